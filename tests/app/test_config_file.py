""".streamlit/config.toml: the defaults the app relies on (upload limit, no usage stats, a theme, no GC per run)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def test_config_sets_upload_limit_privacy_and_theme():
    cfg = tomllib.loads(CONFIG.read_text())
    limit = cfg["server"]["maxUploadSize"]
    assert isinstance(limit, int) and 1 <= limit <= 1000  # MB; bigger embeddings files go through the CLI
    assert cfg["browser"]["gatherUsageStats"] is False
    theme = cfg["theme"]
    assert theme["base"] in ("light", "dark")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", theme["primaryColor"])
    # a full gc.collect() after every fragment rerun cost ~0.2 s each and capped the live chart near 1 update/s
    assert cfg["runner"]["postScriptGC"] is False
    assert cfg["server"]["headless"] is True and cfg["client"]["toolbarMode"] == "viewer"


def test_streamlit_reads_the_same_values():
    from streamlit import config

    config.get_config_options(force_reparse=True, options_from_flags={})
    assert config.get_option("server.maxUploadSize") == tomllib.loads(CONFIG.read_text())["server"]["maxUploadSize"]
    assert config.get_option("browser.gatherUsageStats") is False
    assert config.get_option("runner.postScriptGC") is False
