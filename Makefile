# Two commands for a fresh machine:  make run  (the app)   make test  (the test suite)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test test-fast lint bench bench-app bench-draw bench-scale clean install install-dev

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

# The app listens on localhost only (.streamlit/config.toml). ADDRESS=0.0.0.0 serves it to the network, with no
# login: every run in the hashviz home and the files in the data folders (README, "Serving the app to a network").
# DATA_ROOTS=/srv/a:/srv/b adds folders the app may open files from (besides <hashviz home>/data).
ADDRESS ?=
DATA_ROOTS ?=
run: $(VENV)/.installed
	$(if $(DATA_ROOTS),HASHVIZ_DATA_ROOTS="$(DATA_ROOTS)") $(VENV)/bin/streamlit run app.py \
		$(if $(ADDRESS),--server.address "$(ADDRESS)")

test: $(VENV)/.installed-dev $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# For contributors: everything but the browser tests and the tests marked slow (under 2 minutes here).
test-fast: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not browser and not slow"

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_quantizers.py
	$(PY) benchmarks/bench_report.py

# The app in a real browser (chart updates/s, steps/s, lasso → grid); needs Chromium like the browser tests.
bench-app: $(VENV)/.installed-dev $(CHROMIUM)
	$(PY) benchmarks/bench_app.py

# "Your own image" in a real browser: canvas → neighbours latency against the headless query.
bench-draw: $(VENV)/.installed-dev $(CHROMIUM)
	$(PY) benchmarks/bench_draw.py

# Every page at the benchmarks' scale (mnist5k, a 60,000 × 64 and a 200,000 × 128 file) against issue 10's targets
# (about 20 minutes the first time: it prepares the homes; keep them with --homes DIR).
bench-scale: $(VENV)/.installed-dev $(CHROMIUM)
	$(PY) benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
