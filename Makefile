# Two commands for a fresh machine:  make run  (the app)   make test  (the test suite)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test lint bench bench-app bench-draw clean install install-dev

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .  # the project itself: `hashviz …` on the venv's PATH
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-liberation; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-liberation; fi

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(VENV)/bin/streamlit run app.py

test: $(VENV)/.installed-dev $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_quantizers.py

# The app in a real browser (chart updates/s, steps/s, lasso → grid); needs Chromium like the browser tests.
bench-app: $(VENV)/.installed-dev $(CHROMIUM)
	$(PY) benchmarks/bench_app.py

# "Your own image" in a real browser: canvas → neighbours latency against the headless query.
bench-draw: $(VENV)/.installed-dev $(CHROMIUM)
	$(PY) benchmarks/bench_draw.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
