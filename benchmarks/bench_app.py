"""The app in a real browser: live chart update rate, steps/s and lasso → image grid latency.

Run on demand (not a test): ``python benchmarks/bench_app.py [--home DIR] [--seconds 12] [--lassos 5]``.

It prepares a private hashviz home with the default run at 16 bits (mnist5k · mnist_cnn · cel; ``python -m
hashviz prepare``) unless ``--home`` points at one, starts ``streamlit run app.py`` on a free loopback port and
drives Debian's Chromium with Playwright:

- **chart updates/s**: once the server's warm-up (torch, UMAP compilation) is over, on Rotation (live), HQ with
  50,000 steps is started; a poller inside the page (every 20 ms) reads the last step of the curve chart's plotly
  data (``gd.data``) and records every change, i.e. every time the chart the user sees really changed. steps/s is
  the growth of that last step over the same window.
- **lasso → grid**: on Codes & embeddings, once UMAP has finished, a lasso is drawn on the codes map with the
  mouse; the time from releasing the mouse to the first image of the selection grid in the DOM. The selection is
  cleared (double click) between tries.

Prints each number with its target and the ratio to it, and the machine's load average (2 shared cores: note it).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TARGET_UPDATES, TARGET_LASSO = 2.0, 1.0

POLLER = """() => {
    window.__hv = [];
    const find = () => [...document.querySelectorAll('.js-plotly-plot')].find(
        g => (g.data || []).some(t => t.name === 'quantization error'));
    window.__hvTimer = setInterval(() => {
        const g = find();
        if (!g) return;
        const x = g.data[0].x;
        const last = x && x.length ? x[x.length - 1] : null;
        const rec = window.__hv;
        if (last !== null && (!rec.length || rec[rec.length - 1][1] !== last)) rec.push([performance.now(), last]);
    }, 20);
}"""


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(home: Path) -> None:
    print(f"preparing the default run (16 bits) in {home} …", flush=True)
    subprocess.run([sys.executable, "-m", "hashviz", "prepare", "--bits", "16", "--home", str(home)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_server(home: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {"HASHVIZ_UMAP": "1", "HASHVIZ_UMAP_WARMUP": "1", **os.environ, "HASHVIZ_HOME": str(home)}
    log = open(home / "bench_streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true", *extra],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit((home / "bench_streamlit.log").read_text()[-3000:]) from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("streamlit did not start")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
            except (OSError, IndexError, ValueError):
                pass
    tree, total, grew = {pid}, 0.0, True
    while grew:
        new = {p for p, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= new
        grew = bool(new)
    for p in tree:
        total += stats.get(p, (0, 0.0))[1]
    return total


def wait_quiet(pid: int, limit: float = 120.0) -> float:
    """Wait until the server and its worker are idle (the warm-up — torch, UMAP compilation — is over):
    under 0.1 CPU-second used per second. Returns the seconds waited."""
    t0 = time.perf_counter()
    last = _tree_cpu_seconds(pid)
    while time.perf_counter() - t0 < limit:
        time.sleep(1.0)
        now = _tree_cpu_seconds(pid)
        if now - last < 0.1:
            break
        last = now
    return time.perf_counter() - t0


def idle(pg) -> None:
    pg.wait_for_function("""() => {
        const w = document.querySelector('[data-testid="stStatusWidget"]');
        return !(w && /running/i.test(w.innerText));
    }""", timeout=90_000)
    pg.wait_for_timeout(300)


def live_rate(pg, url: str, seconds: float) -> dict:
    pg.goto(url + "/rotation?bits=16")
    pg.get_by_role("button", name="Start").wait_for()
    steps = pg.get_by_label("Steps")
    steps.fill("50000")
    steps.press("Enter")
    idle(pg)
    pg.get_by_role("button", name="Start").click()
    pg.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].some(
        g => (g.data || []).some(t => t.name === 'quantization error') && g.data[0].x.length > 1)""")
    pg.wait_for_timeout(1500)  # past the first ticks (torch warm-up, first checkpoint)
    pg.evaluate(POLLER)
    pg.wait_for_timeout(seconds * 1000)
    rec = pg.evaluate("() => { clearInterval(window.__hvTimer); return window.__hv; }")
    pg.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
    idle(pg)
    if len(rec) < 2:
        return {"updates_per_s": 0.0, "steps_per_s": 0.0, "changes": len(rec)}
    span = (rec[-1][0] - rec[0][0]) / 1000
    gaps = [(b[0] - a[0]) / 1000 for a, b in zip(rec, rec[1:], strict=False)]
    return {"updates_per_s": (len(rec) - 1) / span, "steps_per_s": (rec[-1][1] - rec[0][1]) / span,
            "changes": len(rec), "window_s": span, "median_gap_s": statistics.median(gaps), "max_gap_s": max(gaps)}


def lasso_latency(pg, url: str, tries: int) -> list[float]:
    pg.goto(url + "/embeddings?bits=16")
    pg.get_by_text("Draw a lasso").wait_for()
    deadline, calm = time.perf_counter() + 180, 0
    while calm < 3 and time.perf_counter() < deadline:  # UMAP runs in the background; wait for the final maps
        pg.wait_for_timeout(1000)
        calm = 0 if "UMAP computing" in pg.inner_text("body") else calm + 1
    idle(pg)
    out = []
    for k in range(tries):
        plot = pg.locator(".js-plotly-plot").nth(1)
        plot.scroll_into_view_if_needed()
        box = plot.locator(".nsewdrag").first.bounding_box()
        cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
        f = 0.2 + 0.05 * (k % 4)
        pts = [(cx - f * w, cy - f * h), (cx + f * w, cy - f * h), (cx + f * w, cy + f * h),
               (cx - f * w, cy + f * h), (cx - f * w, cy - 0.9 * f * h)]
        pg.mouse.move(*pts[0])
        pg.mouse.down()
        for x, y in pts[1:]:
            pg.mouse.move(x, y, steps=6)
        t = time.perf_counter()
        pg.mouse.up()
        pg.locator(".hv-grid img").first.wait_for()
        out.append(time.perf_counter() - t)
        idle(pg)
        pg.mouse.dblclick(cx, cy)  # clear the selection: the grid empties
        pg.wait_for_function("() => document.querySelectorAll('.hv-grid img').length === 0")
        idle(pg)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, help="a hashviz home with the default run prepared (16 bits)")
    ap.add_argument("--seconds", type=float, default=12.0, help="measuring window of the live chart")
    ap.add_argument("--lassos", type=int, default=5)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-liberation")
    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="hv_bench_app_")
        home = Path(tmp.name)
        prepare(home)
    from playwright.sync_api import sync_playwright

    proc, url = start_server(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pg.set_default_timeout(120_000)
            pg.goto(url + "/")
            pg.get_by_text("Sample images per class").wait_for()
            idle(pg)
            waited = wait_quiet(proc.pid)
            print(f"server warm-up over after {waited:.0f} s more; live chart ({load()}) …", flush=True)
            live = live_rate(pg, url, args.seconds)
            print(f"lasso ({load()}) …", flush=True)
            lasso = lasso_latency(pg, url, args.lassos)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if tmp is not None:
            tmp.cleanup()
    med = statistics.median(lasso)
    print(f"\nchart updates/s   {live['updates_per_s']:.2f}  (target ≥ {TARGET_UPDATES}: "
          f"{live['updates_per_s'] / TARGET_UPDATES:.2f}× target; {live['changes']} changes in "
          f"{live.get('window_s', 0):.1f} s, median gap {live.get('median_gap_s', 0):.2f} s, "
          f"max gap {live.get('max_gap_s', 0):.2f} s)")
    print(f"steps/s           {live['steps_per_s']:.0f}  (HQ, full batch, 16 bits, as the browser saw the curve grow)")
    print(f"lasso → grid      median {med:.2f} s, all {[round(x, 2) for x in lasso]}  (target < {TARGET_LASSO} s: "
          f"{TARGET_LASSO / med:.2f}× target)")
    print(load())


if __name__ == "__main__":
    main()
