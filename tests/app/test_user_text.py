"""User text is data, never markup (issue 9 §1): class names from every source — an embeddings .npz, ImageFolder
folder names, a list file's class names, CIFAR's meta file — plus upload file names and error texts quoting them,
on every page that shows them. Checked on what Streamlit sends the browser: markdown bodies (also labels, help,
captions, alerts) carry them only backslash-escaped, HTML bodies and plotly figures only as entities; no <style>,
<a>, <form>, <input> or <button> from user data survives. (tests/app/test_browser.py checks the same in Chromium.)"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.json_format import MessageToDict

from tests.app.conftest import open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

PAGES = ["pages/1_data.py", "pages/2_rotation.py", "pages/3_embeddings.py", "pages/4_queries.py",
         "pages/5_compare.py"]

# the strings, and variants without "/" (a folder name cannot hold one) that are just as harmful as markup
HOSTILE = ('<style>h1,h2,h3{color:red!important;font-size:90px!important}</style>S',
           '<a href="https://evil.example/phish">Session expired, click to log in</a>',
           '<form action="https://evil.example/steal"><input name="pw"><button>Go</button></form>')
NO_SLASH = ('<style>h1,h2,h3{color:red!important;font-size:90px!important}',
            '<a href="https:evil.example">Session expired, click to log in',
            '<form action="https:evil.example"><input name="pw"><button>Go')
TAGS = r"<\s*/?\s*(?:style|a|form|input|button)\b"
RAW = re.compile(TAGS, re.I)  # any such tag
UNESCAPED = re.compile(r"(?<!\\)" + TAGS, re.I)  # such a tag not backslash-escaped for markdown
# widget fields Streamlit shows as plain text (never markdown): the options of a selectbox, typed values
PLAIN_FIELDS = {"options", "default", "value", "rawValue", "rawValues", "placeholder"}
PLAIN_TYPES = {"arrow_data_frame", "dataframe", "arrow_table", "text_input", "text_area"}


def _strings(value, path=()):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, path)


def _elements(node):
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "DESCRIPTOR"):
        yield getattr(node, "type", type(node).__name__), proto
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _elements(child)


def markup_from_user_data(at) -> list[tuple[str, str]]:
    """(element type, text) of every place where user text would be taken as markup by the browser."""
    bad = []
    for kind, proto in _elements(at._tree):
        if kind in PLAIN_TYPES:
            continue
        fields = MessageToDict(proto)
        if kind == "plotly_chart":
            spec = json.loads(fields.get("spec", "{}") or "{}")
            bad += [(kind, s) for _, s in _strings(spec) if RAW.search(s)]
        elif kind == "html":
            bad += [(kind, s) for _, s in _strings(fields) if RAW.search(s)]
        else:
            bad += [(kind, s) for path, s in _strings(fields)
                    if not (set(path) & PLAIN_FIELDS) and UNESCAPED.search(s)]
    return bad


def _texts(at) -> list[str]:
    """Every string Streamlit sends for the page (plotly figures parsed from their JSON)."""
    out = []
    for kind, proto in _elements(at._tree):
        fields = MessageToDict(proto)
        if kind == "plotly_chart":
            fields = json.loads(fields.get("spec", "{}") or "{}")
        out += [s for _, s in _strings(fields)]
    return out


def _shown_somewhere(at, names) -> list[str]:
    """The names found in the page in an escaped form (markdown, HTML or plotly), in order."""
    import html

    from hashviz.ui.text import md_escape

    texts = _texts(at)
    forms = {n: (html.escape(n, quote=True), html.escape(n, quote=False), md_escape(n)) for n in names}
    return [n for n in names if any(f in t for t in texts for f in forms[n])]


# ---- one home with a run from every source of class names ------------------------------------------------
def _write_listfile(root: Path) -> None:
    from tests.data.fakes import write_png

    lines = []
    for i in range(24):
        write_png(root / "imgs" / f"{i}.png", (20 + 9 * i, 200 - 7 * i, 60), size=(28, 28))
        labels = [int(i % 3 == c) for c in range(3)]
        lines.append(f"imgs/{i}.png " + " ".join(map(str, labels)))
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    (root / "names.txt").write_text("\n".join(HOSTILE) + "\n")


def _write_imagefolder(root: Path) -> None:
    from tests.data.fakes import write_png

    for c, name in enumerate(NO_SLASH):
        for i in range(8):
            write_png(root / name / f"{i}.png", (200 - 60 * c, 30 + 60 * c, 9 * i), size=(28, 28))


def _write_cifar(root: Path) -> None:
    import pickle

    from tests.data.fakes import write_cifar10

    write_cifar10(root)
    names = [n.encode() for n in HOSTILE] + [f"class{c}".encode() for c in range(3, 10)]
    with open(root / "cifar-10-batches-py" / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 10, b"num_vis": 3072}, f, protocol=2)


def _npz(names, n_bits: int = 16) -> bytes:
    rng = np.random.default_rng(0)
    labels = np.arange(150) % 3
    z = (rng.standard_normal((3, n_bits)) * 3)[labels] + rng.standard_normal((150, n_bits))
    thumbs = (np.arange(150 * 64) % 255).astype(np.uint8).reshape(150, 8, 8)
    buf = io.BytesIO()
    np.savez(buf, z=z.astype(np.float32), labels=labels, class_names=np.array(names), thumbnails=thumbs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory):
    """{source: run key} in one home: npz, imagefolder, listfile and CIFAR-10 (SHC head: the similarity heatmaps
    with class names on their axes), each with the hostile class names."""
    from hashviz.session.runs import Workspace

    home = tmp_path_factory.mktemp("hostile_home")
    old = os.environ.get("HASHVIZ_HOME")
    os.environ["HASHVIZ_HOME"] = str(home)
    try:
        ws = Workspace(home)
        data = home / "data"
        _write_imagefolder(data / "folders")
        _write_listfile(data / "lists")
        _write_cifar(data / "cifar")
        quick = {"head_options": {"epochs": 2}, "bit_lengths": (16,)}
        keys = {"npz": ws.import_embeddings(_npz(HOSTILE), "classes.npz").key,
                "imagefolder": ws.prepare("imagefolder", dataset_options={"path": str(data / "folders")},
                                          **quick).key,
                "listfile": ws.prepare("listfile", dataset_options={"path": str(data / "lists" / "list.txt"),
                                                                     "class_names": str(data / "lists" / "names.txt")},
                                       **quick).key,
                "cifar10": ws.prepare("cifar10", head="shc", dataset_options={"n_query_per_class": 1,
                                                                              "n_train_per_class": 3},
                                      **quick).key}
    finally:
        if old is None:
            os.environ.pop("HASHVIZ_HOME", None)
        else:
            os.environ["HASHVIZ_HOME"] = old
    return home, keys


NAMES = {"npz": HOSTILE, "imagefolder": NO_SLASH, "listfile": HOSTILE, "cifar10": HOSTILE}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("source", list(NAMES))
def test_hostile_class_names_are_text_on_every_page(hostile_home, monkeypatch, app_env, source, page):
    home, keys = hostile_home
    monkeypatch.setenv("HASHVIZ_HOME", str(home))
    at = open_app(query={"run": keys[source]})
    if page == "pages/3_embeddings.py":  # a selection and a clicked point: the image grids with class captions
        at.session_state["hv_sel"] = [0, 1, 2, 3]
        at.session_state["hv_sel_anchor"] = None
    at.switch_page(page).run()
    if page == "pages/4_queries.py" and source != "listfile":  # single labels: pick the query by class name
        at.radio(key="hv_q_mode").set_value("class").run()
    assert problems(at) == []
    assert at.session_state["hv_run"] == keys[source]
    assert markup_from_user_data(at) == []
    shown = _shown_somewhere(at, NAMES[source])
    single = source != "listfile"  # multi-label runs show class names with each query, not per class
    if single and page in ("pages/1_data.py", "pages/3_embeddings.py"):  # sample headers; map legends
        assert shown == list(NAMES[source]), (page, shown)
    if page == "pages/4_queries.py":  # the query's class(es), as text
        assert shown, page
    if page == "pages/1_data.py" and source == "cifar10":  # SHC: the heatmaps with class names on both axes
        assert any(k == "plotly_chart" for k, _ in _elements(at._tree))


def test_hostile_upload_name_and_errors_quoting_it_are_text(fresh):
    from hashviz.session.jobs import PREPARE_JOBS
    from hashviz.ui.widgets import JOB

    name = '<form action="https:evil.example"><input name="pw"><button>Go [x](https:evil.example).npz'
    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_npz").set_value((name, b"not a zip", "application/octet-stream")).run()
    assert problems(at) != [] and markup_from_user_data(at) == []  # the error quotes the name, as text
    assert any("is not a readable .npz" in e.value and "\\<form" in e.value for e in at.error)
    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_npz").set_value((name, _npz(NO_SLASH), "application/octet-stream")).run()
    job = PREPARE_JOBS.get(at.session_state[JOB])
    assert job is not None and job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()
    assert problems(at) == [] and markup_from_user_data(at) == []
    banner = " ".join(s.value for s in at.success)
    assert "saved as a run" in banner and "\\<form" in banner and "\\[x\\]" in banner  # no live link either
    assert any("Current run: \\<form" in h.value for h in at.subheader)
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert problems(at) == [] and markup_from_user_data(at) == [], page
