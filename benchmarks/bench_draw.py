"""Canvas → neighbours latency on "Your own image", in a real browser, against the headless query in the same run.

Run on demand (not a test): ``python benchmarks/bench_draw.py [--home DIR] [--tries 6]``.

It prepares a private hashviz home with the default run (mnist5k · mnist_cnn · cel at 16/32/48/64 bits, ``python
-m hashviz prepare``) unless ``--home`` points at one, starts ``streamlit run app.py`` on a free loopback port and
drives Debian's Chromium with Playwright. In one browser session it draws a digit on the canvas with the mouse
(a "1", a "7", a "6", …; the canvas reset with its toolbar in between) and times mouse up → the first neighbour
image in the DOM (all bit lengths × sign / ITQ / HQ are drawn in the same script run) and → the codes map holding
the placed point. The first drawing is cold (the server loads the run's backbone, heads and database codes, the
page loads plotly.js); the others are warm.

Baseline, measured in this process on the same home: :func:`hashviz.session.query_image.query_image` on a 280×280
PNG of a stroke like the "1" (what ``hashviz query`` does per image, warm). The ratio says how much the page (canvas
transfer, rerun, grids, map) adds to the work itself. Prints the load average (2 shared cores: note it).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_app import ARGS, CHROMIUM, idle, load, start_server, wait_quiet

NEIGHBOUR_IMG = '.hv-grid figure[title^="index "]'
MAP_HAS_POINT = """() => [...document.querySelectorAll('.js-plotly-plot')].some(
    g => (g.data || []).some(t => t.name === 'your image') && g.querySelector('.scatterlayer .trace'))"""
# timestamps taken by the page itself (performance.now()): the pointer release on the canvas, the first neighbour
# image in the DOM, the map with the placed point — so Playwright's polling adds nothing to the numbers
OBSERVER = """() => {
    const T = window.__hvT = {};
    const mapHasPoint = """ + MAP_HAS_POINT + """;
    document.addEventListener('pointerup', () => { T.up = performance.now(); }, {capture: true, once: true});
    const obs = new MutationObserver(() => {
        if (T.up === undefined) return;
        const now = performance.now();
        if (T.grid === undefined && document.querySelector('""" + NEIGHBOUR_IMG + """')) T.grid = now;
        if (T.map === undefined && mapHasPoint()) { T.map = now; obs.disconnect(); }
    });
    obs.observe(document.body, {childList: true, subtree: true, attributes: true});
}"""
STROKES = ([(0.52, 0.12), (0.5, 0.5), (0.48, 0.88)],  # a "1"
           [(0.25, 0.15), (0.75, 0.15), (0.5, 0.55), (0.4, 0.88)],  # a "7"
           [(0.7, 0.2), (0.4, 0.15), (0.3, 0.5), (0.5, 0.85), (0.72, 0.6), (0.5, 0.45), (0.3, 0.55)])  # a "6"


def prepare_default(home: Path) -> None:
    print(f"preparing the default run (16/32/48/64 bits) in {home} …", flush=True)
    subprocess.run([sys.executable, "-m", "hashviz", "prepare", "--home", str(home)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def draw(pg, stroke) -> tuple[float, float]:
    """Draw ``stroke`` (fractions of the canvas) and time mouse up → first neighbour image, → map with the point
    (timestamps taken in the page)."""
    surface = pg.locator("canvas.upper-canvas").first
    surface.scroll_into_view_if_needed()
    box = surface.bounding_box()
    pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
    pg.mouse.move(*pts[0])
    pg.mouse.down()
    for x, y in pts[1:]:
        pg.mouse.move(x, y, steps=12)
    pg.evaluate(OBSERVER)
    pg.mouse.up()
    pg.locator(NEIGHBOUR_IMG).first.wait_for()
    pg.wait_for_function(MAP_HAS_POINT)
    pg.wait_for_function("() => window.__hvT.map !== undefined && window.__hvT.grid !== undefined")
    t = pg.evaluate("() => window.__hvT")
    return (t["grid"] - t["up"]) / 1000, (t["map"] - t["up"]) / 1000


def session(browser, url: str, tries: int) -> list[tuple[float, float]]:
    """One browser session drawing ``tries`` digits, the canvas reset (its toolbar) between them: the first is
    cold (the server loads the run's backbone, heads and database codes; the page loads plotly.js)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)
    out = []
    try:
        pg.goto(url + "/draw?bits=16")
        pg.get_by_text("Draw one digit").wait_for()
        idle(pg)
        for k in range(tries):
            if k:
                pg.locator("canvas.upper-canvas").first.hover()
                pg.get_by_role("button", name="Reset canvas & history").click()
                pg.get_by_text("Draw one digit").wait_for()
                pg.wait_for_function(f"() => !document.querySelector('{NEIGHBOUR_IMG}')")
                idle(pg)
            out.append(draw(pg, STROKES[k % len(STROKES)]))
            idle(pg)
    finally:
        ctx.close()
    return out


def headless(home: Path, tries: int) -> list[float]:
    import numpy as np
    from PIL import Image

    from hashviz.session.query_image import load_run_model, query_image, stored_inputs
    from hashviz.session.runs import Workspace

    canvas = np.full((280, 280), 255, np.uint8)
    canvas[34:246, 126:154] = 0
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    ws = Workspace(home)
    key = ws.list_runs()[0].key
    model = load_run_model(ws.store, key)
    embs, fitted = stored_inputs(ws, key)
    query_image(model, buf.getvalue(), embs, fitted)  # warm
    out = []
    for _ in range(tries):
        t = time.perf_counter()
        query_image(model, buf.getvalue(), embs, fitted)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, help="a hashviz home with the default run prepared")
    ap.add_argument("--tries", type=int, default=6, help="drawings (the first is cold)")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-liberation")
    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="hv_bench_draw_")
        home = Path(tmp.name)
        prepare_default(home)
    from playwright.sync_api import sync_playwright

    proc, url = start_server(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_context().new_page()
            pg.goto(url + "/")
            pg.get_by_text("Sample images per class").wait_for()
            waited = wait_quiet(proc.pid)
            pg.context.close()
            print(f"server warm-up over after {waited:.0f} s more; drawing ({load()}) …", flush=True)
            tries = session(browser, url, max(2, args.tries))
            browser.close()
        base = headless(home, 5)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if tmp is not None:
            tmp.cleanup()
    cold, warm = tries[0], tries[1:]
    med_grid = statistics.median(t[0] for t in warm)
    med_map = statistics.median(t[1] for t in warm)
    med_base = statistics.median(base)
    print(f"\ncanvas → neighbours  warm median {med_grid:.2f} s, all {[round(t[0], 2) for t in warm]}; "
          f"cold (first drawing) {cold[0]:.2f} s")
    print(f"canvas → map point   warm median {med_map:.2f} s, all {[round(t[1], 2) for t in warm]}; "
          f"cold {cold[1]:.2f} s")
    print(f"baseline query_image (headless, warm, 4 bit lengths × 3 quantizers) median {med_base:.3f} s; "
          f"the page takes {med_grid / med_base:.1f}× that to show the neighbours")
    print(load())


if __name__ == "__main__":
    main()
