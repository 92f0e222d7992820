""".streamlit/config.toml: the defaults the app relies on (localhost only, upload limit, no usage stats, a theme, no
GC per run), and `make run`'s opt-in to serve the app to a network."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".streamlit" / "config.toml"


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
    # the app has no login: only this machine can open it unless the operator opts in (make run ADDRESS=…)
    assert cfg["server"]["address"] == "localhost"


def test_streamlit_reads_the_same_values():
    from streamlit import config

    config.get_config_options(force_reparse=True, options_from_flags={})
    assert config.get_option("server.maxUploadSize") == tomllib.loads(CONFIG.read_text())["server"]["maxUploadSize"]
    assert config.get_option("browser.gatherUsageStats") is False
    assert config.get_option("runner.postScriptGC") is False
    assert config.get_option("server.address") == "localhost"


def _make_run(*args: str) -> str:
    """The commands `make run` would execute (dry run), from the one that starts streamlit."""
    out = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out[out.rfind("\n", 0, out.index("streamlit run app.py")) + 1:]


def test_make_run_serves_the_network_only_when_asked():
    default = _make_run()
    assert "--server.address" not in default and "HASHVIZ_DATA_ROOTS" not in default
    opted = _make_run("ADDRESS=0.0.0.0", "DATA_ROOTS=/srv/a:/srv/b")
    assert '--server.address "0.0.0.0"' in opted and 'HASHVIZ_DATA_ROOTS="/srv/a:/srv/b"' in opted


def _listening(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if state == "0A" and int(p, 16) == port:  # 0A = LISTEN
                    raw = bytes.fromhex(addr)
                    if width == 8:
                        found.add(str(ipaddress.IPv4Address(raw[::-1])))
                    else:  # four little-endian 32-bit words
                        found.add(str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))))
    return found


@pytest.mark.slow
def test_the_server_listens_on_loopback_only_by_default(tmp_path):
    """A real `streamlit run app.py` with the project's config and no address flag: every listening socket of
    its port is a loopback address (127.0.0.1 / ::1), none is 0.0.0.0 or a network interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HASHVIZ_HOME": str(tmp_path / "home"), "HASHVIZ_UMAP": "0", "HASHVIZ_UMAP_WARMUP": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer on 127.0.0.1")
        addresses = _listening(port)
        assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses
    finally:
        proc.terminate()
        proc.wait(20)
