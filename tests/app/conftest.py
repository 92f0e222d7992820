"""App test fixtures: a store prepared once per session on a small config, and a fresh home per test.

The prepared store is mnist5k with the bundled CNN and CEL heads at 16 and 32 bits (2 head epochs) — the same
pipeline as "Prepare default", only shorter. HASHVIZ_UMAP=0 keeps background UMAP out of AppTest runs (pages
show PCA); the browser tests run a real server with UMAP on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SMALL_BITS = (16, 32)


def _prepared_home(tmp_path_factory, name: str, head: str, bits) -> Path:
    """A fresh home with one run prepared in it (2 head epochs), HASHVIZ_HOME restored afterwards."""
    home = tmp_path_factory.mktemp(name)
    old = os.environ.get("HASHVIZ_HOME")
    os.environ["HASHVIZ_HOME"] = str(home)
    try:
        from hashviz.session.runs import Workspace

        Workspace(home).prepare("mnist5k", "mnist_cnn", head, bits, head_options={"epochs": 2})
    finally:
        if old is None:
            os.environ.pop("HASHVIZ_HOME", None)
        else:
            os.environ["HASHVIZ_HOME"] = old
    return home


@pytest.fixture(scope="session")
def filled_home(tmp_path_factory) -> Path:
    return _prepared_home(tmp_path_factory, "filled_home", "cel", SMALL_BITS)


@pytest.fixture(scope="session")
def shc_home(tmp_path_factory) -> Path:
    """A store with an SHC run (16 bits, 2 head epochs): its head keeps the class and centre similarities."""
    return _prepared_home(tmp_path_factory, "shc_home", "shc", (16,))


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch):
    """Run every AppTest the way the server runs the app: app.py with st.navigation on every rerun.

    AppTest resets Streamlit's "pages directory" flag before each run, and because our pages live in ``pages/``
    Streamlit would then run a page file on its own after ``switch_page`` (no app.py, no sidebar) — unlike the
    server, where st.navigation turns that mode off for good on the first run."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def app_env(monkeypatch):
    monkeypatch.setenv("HASHVIZ_UMAP", "0")
    monkeypatch.setenv("HASHVIZ_UMAP_WARMUP", "0")


@pytest.fixture
def fresh(tmp_path, monkeypatch, app_env) -> Path:
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def filled(filled_home, monkeypatch, app_env) -> Path:
    monkeypatch.setenv("HASHVIZ_HOME", str(filled_home))
    return filled_home


def open_app(page: str | None = None, query: dict | None = None, timeout: float = 120):
    """An AppTest of app.py, run once (on ``page`` when given; query params set before the first run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def problems(at) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def started_job(at):
    """The last preparation or import this AppTest session started (it may already have ended: a small import can
    finish, and the app switch to its run, within the script run that started it)."""
    from hashviz.session.jobs import PREPARE_JOBS
    from hashviz.ui.widgets import JOB

    assert JOB in at.session_state, "no preparation was started"
    return PREPARE_JOBS.get(at.session_state[JOB])


def compare_long(at):
    """The Compare page's long-form table (one row per quantizer × bit length, every metric a column)."""
    return next(d.value for d in at.dataframe if "n_bits" in d.value.columns)


def compare_grid(at):
    """The Compare page's quantizer × bit length table (the metric chosen above it in each cell)."""
    return next(d.value for d in at.dataframe if any(str(c).endswith(" bits") for c in d.value.columns))
