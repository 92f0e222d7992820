"""The app in a real browser: `streamlit run app.py` on a free loopback port, driven by Playwright + Debian's
Chromium. Flows: live rotation (the curve grows, a second session is not disturbed), lasso on the codes map
fills the image grid, switching the bit length changes the results, export a file and load it back. Each page
is screenshotted; with HASHVIZ_SCREENSHOTS=1 the shots replace docs/screenshots/ (shown in the README), otherwise
they go to a temporary folder so a test run leaves the work tree clean.

Chromium must be installed (`apt-get install -y chromium fonts-liberation`); `make test` does it. Without it
these tests fail — they never skip silently.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("HASHVIZ_SCREENSHOTS") == "1"
         else Path(os.environ.get("TMPDIR", "/tmp")) / "hashviz-screenshots")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
TIMINGS: dict[str, float] = {}

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium "
                    "fonts-liberation` (or run `make test`, which does)")


@contextlib.contextmanager
def _streamlit(home: Path, *args: str, umap: bool = True):
    """`streamlit run app.py` on a free loopback port with ``home`` as HASHVIZ_HOME; yields the URL."""
    port = _free_port()
    flag = "1" if umap else "0"
    env = {**os.environ, "HASHVIZ_HOME": str(home), "HASHVIZ_UMAP": flag, "HASHVIZ_UMAP_WARMUP": flag}
    log_path = home / f"streamlit-{port}.log"
    log = open(log_path, "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true", *args],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        TIMINGS.setdefault("server_start_s", time.perf_counter() - t0)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(filled_home, tmp_path_factory):
    _need_chromium()
    home = tmp_path_factory.mktemp("browser_home")
    shutil.copytree(filled_home, home, dirs_exist_ok=True)  # uploads in these flows stay out of other tests
    with _streamlit(home) as url:
        yield url
    print("\nbrowser timings:", {k: round(v, 2) for k, v in TIMINGS.items()})


@pytest.fixture(scope="module")
def run_key(filled_home) -> str:
    from hashviz.pipeline import list_prepared

    return list_prepared(filled_home)[0].key


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    ctx.close()


LAST_STEP_JS = """() => {
    const g = [...document.querySelectorAll('.js-plotly-plot')].find(
        g => (g.data || []).some(t => t.name === 'quantization error'));
    const x = g ? g.data[0].x : [];
    return x.length ? x[x.length - 1] : -1;
}"""

CONTRAST_JS = """(selector) => {
    const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = c => rgb(c).map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
        .reduce((s, v, i) => s + [0.2126, 0.7152, 0.0722][i] * v, 0);
    const bg = getComputedStyle(document.querySelector('[data-testid="stApp"]')).backgroundColor;
    const el = document.querySelector(selector);
    const fg = el instanceof SVGElement ? getComputedStyle(el).fill : getComputedStyle(el).color;
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    return {fg, bg, ratio: (hi + 0.05) / (lo + 0.05), background: lum(bg)};
}"""


def readable(pg, selector: str, minimum: float) -> dict:
    """The text colour of the first ``selector`` against the app background: its WCAG contrast ratio."""
    pg.locator(selector).first.wait_for()
    c = pg.evaluate(CONTRAST_JS, selector)
    assert c["ratio"] >= minimum, (selector, c)
    return c


def idle(pg, timeout: float = 90_000) -> None:
    """Wait until Streamlit has finished the current script run (no running indicator, no stale elements)."""
    pg.wait_for_function("""() => {
        const w = document.querySelector('[data-testid="stStatusWidget"]');
        return !(w && /running/i.test(w.innerText));
    }""", timeout=timeout)
    pg.wait_for_timeout(300)


def shot(pg, name: str, height: int = 1800) -> None:
    """Streamlit scrolls inside its own container, so a tall viewport (not full_page) shows the whole page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = pg.viewport_size
    pg.set_viewport_size({"width": size["width"], "height": height})
    pg.wait_for_timeout(800)
    pg.screenshot(path=str(SHOTS / f"{name}.png"))
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000  # a real page, not a blank frame
    pg.set_viewport_size(size)


def caption_number(pg, pattern: str) -> int | None:
    m = re.search(pattern, pg.inner_text("body"))
    return int(m.group(1)) if m else None


def test_first_page_and_data_screenshot(server, page):
    t = time.perf_counter()
    page.goto(server + "/")
    page.get_by_text("Current run: ").wait_for()
    page.get_by_text("Sample images per class").wait_for()
    TIMINGS["first_page_s"] = time.perf_counter() - t
    idle(page)
    shot(page, "1_data")


def test_live_rotation_curve_grows_and_other_sessions_are_undisturbed(server, page, browser):
    page.goto(server + "/rotation?bits=16")
    page.get_by_role("button", name="Start").wait_for()
    steps = page.get_by_label("Steps")
    steps.fill("50000")
    steps.press("Enter")
    idle(page)
    assert steps.input_value() == "50000"
    page.get_by_role("button", name="Start").click()
    page.get_by_text(re.compile(r"Curve rows: \d+")).wait_for()  # the first tick (torch may still be loading)
    seen, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < 20 and (len(seen) < 6 or time.perf_counter() - t0 < 5):
        n = caption_number(page, r"Curve rows: (\d+)")
        if n is not None and (not seen or n != seen[-1]):
            seen.append(n)
        page.wait_for_timeout(50)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] > seen[0], seen
    first = page.evaluate(LAST_STEP_JS)
    assert first > 0, first
    # the plotted curve itself grows, not only the caption
    page.wait_for_function(f"() => ({LAST_STEP_JS})() > {first}", timeout=10_000)
    TIMINGS["chart_updates_per_s"] = (len(seen) - 1) / (time.perf_counter() - t0)
    sps = re.search(r"steps/s\s*(\d+)", page.inner_text("body"))
    TIMINGS["steps_per_s"] = float(sps.group(1)) if sps else float("nan")
    # a second browser session: its own state, the first one's fit keeps running
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.goto(server + "/rotation?bits=16")
    other.get_by_role("button", name="Start").wait_for()
    idle(other)
    assert other.get_by_role("button", name="Start").is_enabled()  # not running in this session
    before = caption_number(page, r"Curve rows: (\d+)")
    # the first session keeps training: its curve grows again (patiently: the second session's first page load
    # competes for the 2 cores, and a page in another window may have its timers throttled)
    t1, after = time.perf_counter(), before
    while after <= before and time.perf_counter() - t1 < 15:
        page.wait_for_timeout(250)
        after = caption_number(page, r"Curve rows: (\d+)")
    assert after > before, (before, after)
    other.context.close()
    shot(page, "2_rotation")
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped").first.wait_for()
    assert main.get_by_role("button", name="Start").is_enabled()


def test_switching_bits_changes_the_results(server, page, run_key):
    page.goto(server + f"/compare?run={run_key}&bits=16")
    page.get_by_text("for the sidebar's 16 bits").wait_for()
    idle(page)
    shot(page, "5_compare", height=2300)
    page.locator('[data-testid="stSidebar"]').get_by_text("32", exact=True).click()
    page.get_by_text("for the sidebar's 32 bits").wait_for()
    assert "bits=32" in page.url


def test_queries_page(server, page, run_key):
    page.goto(server + f"/queries?run={run_key}&bits=16&k=8")
    page.get_by_text("32 bits", exact=True).wait_for()
    idle(page)
    page.wait_for_function("() => document.querySelectorAll('.hv-grid img').length >= 1 + 8 * 3 * 2")
    # the query + k × (sign, ITQ, HQ) × 2 bit lengths + k for the live fit of the rotation test (16 bits)
    assert page.locator(".hv-grid img").count() == 1 + 8 * 3 * 2 + 8
    assert page.get_by_text(re.compile(r"live HQ-l2 · AP")).count() == 1
    marks = page.locator(".hv-grid figcaption").all_inner_texts()
    assert sum(m.startswith(("✓", "✗")) for m in marks) == 8 * 3 * 2 + 8  # every result carries its mark
    assert readable(page, ".hv-grid figcaption", 4.5)["background"] > 0.8  # light theme: dark text on white
    shot(page, "4_queries", height=2000)


def test_lasso_on_the_codes_map_fills_the_grid(server, page, run_key):
    page.goto(server + f"/embeddings?run={run_key}&bits=16")
    page.get_by_text("Draw a lasso").wait_for()
    # UMAP runs in a background process (PCA meanwhile); lasso on the final maps, so no redraw interferes
    deadline, calm = time.perf_counter() + 120, 0
    while calm < 3 and time.perf_counter() < deadline:  # absent three checks in a row: no rerun pending
        page.wait_for_timeout(1000)
        calm = 0 if "UMAP computing" in page.inner_text("body") else calm + 1
    TIMINGS["umap_ready"] = float(calm >= 3)
    idle(page)
    plots = page.locator(".js-plotly-plot")
    box = None
    for _ in range(40):  # the maps may be redrawn once more when the last UMAP lands
        plots.nth(1).wait_for()
        plots.nth(1).scroll_into_view_if_needed()
        box = plots.nth(1).locator(".nsewdrag").first.bounding_box()
        if box is not None:
            break
        page.wait_for_timeout(500)
    assert box is not None, "the codes map did not render"
    cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
    pts = [(cx - 0.35 * w, cy - 0.35 * h), (cx + 0.35 * w, cy - 0.35 * h), (cx + 0.35 * w, cy + 0.35 * h),
           (cx - 0.35 * w, cy + 0.35 * h), (cx - 0.35 * w, cy - 0.3 * h)]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for x, y in pts[1:]:
        page.mouse.move(x, y, steps=8)
    t = time.perf_counter()
    page.mouse.up()
    page.get_by_text(re.compile(r"\d+ selected")).wait_for()
    page.locator(".hv-grid img").first.wait_for()
    TIMINGS["lasso_to_grid_s"] = time.perf_counter() - t
    n_selected = caption_number(page, r"(\d+) selected")
    assert n_selected > 0 and page.locator(".hv-grid img").count() == min(n_selected, 80)
    idle(page)
    shot(page, "3_embeddings", height=2300)


SELECTED_ROWS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 3).map(g => {
    const rows = [];  // _fullData: the arrays as plotly decoded them (g.data may hold them base64-encoded)
    for (const t of g._fullData || []) {
        if (!t.customdata || !t.selectedpoints || (t.name !== 'points' && t.name !== 'other classes')) continue;
        for (const k of t.selectedpoints) rows.push(Number(t.customdata[k]));
    }
    return rows.sort((a, b) => a - b);
})"""

POINT_JS = """([i, k]) => {
    const g = document.querySelectorAll('.js-plotly-plot')[i];
    const t = g._fullData.find(t => t.name === 'points');
    const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, r = g.getBoundingClientRect();
    return {x: r.left + xa._offset + xa.c2p(t.x[k]), y: r.top + ya._offset + ya.c2p(t.y[k])};
}"""


def _final_maps(page) -> None:
    """Wait until every map shows its UMAP (no "UMAP computing" three checks in a row) and the page is idle."""
    deadline, calm = time.perf_counter() + 120, 0
    while calm < 3 and time.perf_counter() < deadline:
        page.wait_for_timeout(1000)
        calm = 0 if "UMAP computing" in page.inner_text("body") else calm + 1
    idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 3).every("
                           "g => g._fullLayout && String(g._fullLayout.clickmode).includes('select'))")


def test_a_click_in_the_default_lasso_mode_and_linked_brushing(server, page, run_key):
    """One click on a point (the lasso is the drag mode) picks it and rings its neighbours; a lasso on one map
    greys the same rows in all three maps."""
    page.goto(server + f"/embeddings?run={run_key}&bits=16")
    page.get_by_text("Draw a lasso").wait_for()
    _final_maps(page)
    page.locator(".js-plotly-plot").nth(1).scroll_into_view_if_needed()
    assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[1]._fullLayout.dragmode") == "lasso"
    pt = page.evaluate(POINT_JS, [1, 7])
    page.mouse.move(pt["x"], pt["y"])
    page.wait_for_timeout(300)
    page.mouse.click(pt["x"], pt["y"])  # identical codes share a point: the row picked is the one on top
    page.get_by_text(re.compile(r"Clicked point \d+")).wait_for()
    row = caption_number(page, r"Clicked point (\d+)")
    page.get_by_text(f"Nearest codes to point {row}").first.wait_for()
    assert page.get_by_text(f"Nearest codes to point {row}").count() == 2
    page.wait_for_function(f"() => ({SELECTED_ROWS_JS})().every(r => r.length === 1 && r[0] === {row})")
    # a lasso on the "before" map: the same rows are selected (the rest greyed) in every map
    idle(page)
    plot = page.locator(".js-plotly-plot").nth(1)
    plot.scroll_into_view_if_needed()
    box = plot.locator(".nsewdrag").first.bounding_box()
    cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
    pts = [(cx - 0.3 * w, cy - 0.3 * h), (cx + 0.3 * w, cy - 0.3 * h), (cx + 0.3 * w, cy + 0.3 * h),
           (cx - 0.3 * w, cy + 0.3 * h), (cx - 0.3 * w, cy - 0.25 * h)]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for x, y in pts[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.wait_for_function("() => { const m = /(\\d+) selected/.exec(document.body.innerText); "
                           "return m && +m[1] > 1; }")
    n = caption_number(page, r"(\d+) selected")
    page.wait_for_function(f"() => ({SELECTED_ROWS_JS})().every(r => r.length === {n})")
    rows = page.evaluate(SELECTED_ROWS_JS)
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == n


def test_export_and_load_back(server, page, tmp_path, run_key):
    page.goto(server + f"/compare?run={run_key}&bits=16")
    page.get_by_text("Export").first.wait_for()
    idle(page)
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile(r"Codes \+ rotations")).click()
    path = tmp_path / "export.npz"
    dl.value.save_as(path)
    from hashviz.embeddings import Embeddings

    emb = Embeddings.load(path)
    assert emb.dim == 16 and emb.n == 5000
    page.goto(server + "/")
    page.get_by_role("tab", name=re.compile("Bring your own")).click()
    page.locator('input[type="file"][accept*=".npz"]').set_input_files(str(path))
    page.get_by_text("saved as a run").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


# ---- dark theme: a second server started with --theme.base dark ------------------------------------------------
@pytest.fixture(scope="module")
def dark_server(filled_home, tmp_path_factory):
    _need_chromium()
    home = tmp_path_factory.mktemp("dark_home")
    shutil.copytree(filled_home, home, dirs_exist_ok=True)
    with _streamlit(home, "--theme.base", "dark", umap=False) as url:
        yield url


def test_dark_theme_keeps_our_html_and_figures_readable(dark_server, browser, run_key):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    try:
        pg.goto(dark_server + f"/queries?run={run_key}&bits=16&k=8")
        pg.wait_for_function("() => document.querySelectorAll('.hv-grid img').length >= 1 + 8 * 3 * 2")
        idle(pg)
        caption = readable(pg, ".hv-grid figcaption", 4.5)  # ✓/✗ d=… captions under the images
        assert caption["background"] < 0.1, caption  # the page really is dark
        shot(pg, "dark_4_queries", height=1400)
        pg.goto(dark_server + f"/compare?run={run_key}&bits=16")
        pg.get_by_text("for the sidebar's 16 bits").wait_for()
        idle(pg)
        readable(pg, ".js-plotly-plot .xtick text", 4.5)  # axis labels follow the theme
        readable(pg, ".js-plotly-plot .legendtext", 4.5)
        shot(pg, "dark_5_compare", height=2300)
        pg.goto(dark_server + "/rotation?bits=16")
        pg.get_by_role("button", name="Start").wait_for()
        idle(pg)
        pg.get_by_role("button", name="Start").click()
        pg.wait_for_function(LAST_STEP_JS.replace("return x.length ? x[x.length - 1] : -1;", "return x.length > 1;"))
        readable(pg, ".js-plotly-plot .ytick text", 4.5)
        readable(pg, ".js-plotly-plot .annotation-text", 3.0)  # the sign / ITQ reference labels
        shot(pg, "dark_2_rotation")
    finally:
        ctx.close()
