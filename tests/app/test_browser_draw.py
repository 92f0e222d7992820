"""The "Your own image" page in a real browser: draw a "1" on the canvas with the mouse (Playwright + Chromium) and
see the codes, the neighbours (mostly 1s) and the map appear. The screenshot goes to docs/screenshots/6_draw.png
with HASHVIZ_SCREENSHOTS=1 (shown in the README). Uses the server fixtures of test_browser.py."""

from __future__ import annotations

import re
import time

import pytest

from tests.app.test_browser import (  # noqa: F401 (fixtures)
    TIMINGS,
    browser,
    chromium,
    idle,
    page,
    run_key,
    server,
    shot,
)

pytestmark = pytest.mark.browser

NEIGHBOUR_IMG = '.hv-grid figure[title^="index "]'
MAP_HAS_POINT_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].some(
    g => (g.data || []).some(t => t.name === 'your image') && g.querySelector('.scatterlayer .trace'))"""


def canvas_box(pg) -> dict:
    """The drawing surface of the canvas component (Fabric's upper canvas, which takes the mouse)."""
    surface = pg.locator("canvas.upper-canvas").first
    surface.wait_for()
    surface.scroll_into_view_if_needed()
    for _ in range(40):
        box = surface.bounding_box()
        if box is not None and box["width"] > 100:
            return box
        pg.wait_for_timeout(250)
    raise AssertionError("the canvas did not render")


def draw_stroke(pg, box: dict, points) -> float:
    """Press, move through ``points`` (fractions of the canvas), release; returns the time of the release."""
    x0, y0 = box["x"], box["y"]
    pts = [(x0 + fx * box["width"], y0 + fy * box["height"]) for fx, fy in points]
    pg.mouse.move(*pts[0])
    pg.mouse.down()
    for x, y in pts[1:]:
        pg.mouse.move(x, y, steps=12)
    t = time.perf_counter()
    pg.mouse.up()
    return t


def test_drawing_a_one_shows_its_codes_and_neighbours(server, page, run_key):  # noqa: F811
    page.goto(server + f"/draw?run={run_key}&bits=16")
    page.get_by_text("Draw one digit").wait_for()
    idle(page)
    box = canvas_box(page)
    released = draw_stroke(page, box, [(0.52, 0.12), (0.5, 0.5), (0.48, 0.88)])  # a thick vertical stroke
    page.locator(NEIGHBOUR_IMG).first.wait_for()
    TIMINGS["canvas_to_neighbours_s"] = time.perf_counter() - released
    idle(page)
    page.get_by_text("what the network sees (28×28)").first.wait_for()
    body = page.inner_text("body")
    predicted = re.findall(r"predicted (\S+) \((\d+) of 10\)", body)
    assert len(predicted) >= 2 * 3, predicted  # 16 and 32 bits × sign, ITQ, HQ at least
    assert sum(p == "1" for p, _ in predicted) >= len(predicted) - 1, predicted
    captions = page.locator(f"{NEIGHBOUR_IMG} figcaption").all_inner_texts()
    assert len(captions) == 10 * len(predicted)
    assert sum(c.startswith("1 ") for c in captions) >= 0.8 * len(captions)  # mostly 1s
    page.get_by_text("Placed by nearest neighbours in code space").wait_for()
    page.wait_for_function(MAP_HAS_POINT_JS)  # the codes map is drawn with the placed image on it
    assert page.locator('[data-testid="stException"]').count() == 0
    # for the screenshot, give the background UMAP time to replace the PCA map (not part of the assertion)
    deadline, calm = time.perf_counter() + 120, 0
    while calm < 3 and time.perf_counter() < deadline:
        page.wait_for_timeout(1000)
        calm = 0 if "UMAP computing" in page.inner_text("body") else calm + 1
    idle(page)
    page.wait_for_function(MAP_HAS_POINT_JS)
    shot(page, "6_draw", height=2000)
