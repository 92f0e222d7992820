"""Every page through Streamlit's AppTest: fresh home, prepared store, live training, selection, uploads, URLs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from hashviz.embeddings import Embeddings
from hashviz.evaluate import evaluate
from tests.app.conftest import SMALL_BITS, compare_grid, compare_long, open_app, problems, started_job

PAGES = ["pages/1_data.py", "pages/2_rotation.py", "pages/3_embeddings.py", "pages/4_queries.py",
         "pages/5_compare.py", "pages/7_penalty.py"]


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def _run_key(home):
    from hashviz.session.runs import Workspace

    return Workspace(home).list_runs()[0].key


def _curve_rows(at) -> int:
    """The live chart's "Curve rows: N" caption (what the user reads under the curve)."""
    text = next(c.value for c in at.caption if c.value.startswith("Curve rows: "))
    return int(text.split()[2])


@pytest.mark.parametrize("page", PAGES)
def test_each_page_on_a_fresh_home_gives_the_next_step(fresh, page):
    at = open_app(page)
    assert problems(at) == []
    assert len(at.title) == 1 and len(at.markdown[0].value.split(". ")) >= 2  # the two-sentence intro
    if page == "pages/1_data.py":
        assert any(b.label == "Prepare default" for b in at.button)
    else:
        assert "Nothing is prepared yet" in _texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_on_a_prepared_store(filled, page):
    at = open_app(page)
    assert problems(at) == []
    text = _texts(at)
    assert "Nothing is prepared yet" not in text
    if page == "pages/1_data.py":
        assert {m.label: m.value for m in at.metric}["queries"] == "1000"
        assert len(at.get("html")) >= 10  # a sample row per class
    if page == "pages/4_queries.py":
        heads = [m.value for m in at.markdown if m.value.startswith("#### ")]
        assert heads == [f"#### {b} bits" for b in SMALL_BITS]
        assert "AP@all (hashviz) " in text
    if page == "pages/5_compare.py":
        df = compare_long(at)
        assert len(df) == len(SMALL_BITS) * 3 and set(df["quantizer"]) == {"sign", "ITQ", "HQ"}
        assert "mAP@all (hashviz)" in df.columns and "P@1000 (hashviz)" in df.columns
        grid = compare_grid(at)  # quantizer × bits, mAP@all in the cells: the long form's numbers, pivoted
        assert list(grid.columns) == ["quantizer"] + [f"{b} bits" for b in SMALL_BITS]
        assert list(grid["quantizer"]) == ["sign", "ITQ", "HQ"]
        for b in SMALL_BITS:
            for q in ("sign", "ITQ", "HQ"):
                cell = grid.loc[grid["quantizer"] == q, f"{b} bits"].item()
                assert cell == df[(df["quantizer"] == q) & (df["n_bits"] == b)]["mAP@all (hashviz)"].item()
    if page == "pages/7_penalty.py":
        assert "No penalty sweep is stored for this dataset" in text


def test_compare_numbers_equal_the_cli(filled, capsys):
    """Headless parity: the Compare table and `python -m hashviz evaluate --json` give the same numbers."""
    from hashviz import cli
    from hashviz.pipeline import list_prepared

    at = open_app("pages/5_compare.py")
    df = compare_long(at)
    emb_path = list_prepared()[0].run(16).embeddings
    for name, label in (("sign", "sign"), ("hq", "HQ")):
        assert cli.main(["evaluate", str(emb_path), "--quantizer", name, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        row = df[(df["quantizer"] == label) & (df["n_bits"] == 16)].iloc[0]
        assert row["mAP@all (hashviz)"] == pytest.approx(out["map"], abs=1e-12)
        assert row["quantization error"] == pytest.approx(out["quantization_error"], rel=1e-6)


@pytest.mark.slow
def test_rotation_steps_grow_the_curve_and_a_reload_shows_it(filled):
    at = open_app("pages/2_rotation.py")
    at.selectbox(key="hv_rot_q").set_value("hq").run()
    at.number_input(key="hv_rot_hq_steps").set_value(50_000)  # no machine ends it in a few ticks: Stop stays enabled
    at.button(key="hv_rot_start").click().run()
    assert problems(at) == []
    lengths = [_curve_rows(at)]
    for _ in range(3):  # fragments do not tick in AppTest: each run() is one tick
        at.run()
        lengths.append(_curve_rows(at))
    assert lengths[0] >= 1 and all(b > a for a, b in zip(lengths, lengths[1:])), lengths
    at.button(key="hv_rot_stop").click().run()
    status = {m.label: m.value for m in at.metric}
    assert status["status"] == "stopped"
    stopped_len = _curve_rows(at)
    me = at.query_params["me"]
    # a reload (a new session with the same URL, so the same workspace token) finds the checkpoint
    from hashviz.session.jobs import SESSION_OBJECTS

    SESSION_OBJECTS.prune(lambda s: False)
    again = open_app("pages/2_rotation.py", query={"me": me})
    assert problems(again) == []
    assert _curve_rows(again) == stopped_len
    assert {m.label: m.value for m in again.metric}["status"].startswith("stopped at step")
    # the result is offered to this browser's other pages, named by its settings
    cmp = open_app("pages/5_compare.py", query={"me": me})
    assert "live HQ-l2 · lr 0.01 · full batch · 50000 steps" in set(compare_long(cmp)["quantizer"])
    # … and not to another browser until it is shared
    other = open_app("pages/5_compare.py")
    assert not any(q.startswith("live ") for q in compare_long(other)["quantizer"])
    again.button(key="hv_rot_discard").click().run()
    SESSION_OBJECTS.prune(lambda s: False)


@pytest.mark.slow
def test_injected_selection_fills_the_grid_and_a_click_rings_neighbours(filled):
    at = open_app("pages/3_embeddings.py")
    assert problems(at) == []
    n_html = len(at.get("html"))
    at.session_state["hv_sel"] = [3, 10, 42, 99]
    at.run()
    grids = [h.proto.body for h in at.get("html")]
    assert len(grids) == n_html + 1 and grids[-1].count("<img") == 4
    assert "4 selected" in _texts(at)
    at.session_state["hv_sel"] = [42]
    at.session_state["hv_sel_anchor"] = 42
    at.run()
    heads = [m.value for m in at.markdown if m.value.startswith("**Nearest codes to point 42")]
    assert len(heads) == 2
    neighbour_grids = [h.proto.body for h in at.get("html")][-2:]
    assert all(g.count("<img") == 12 and "d=" in g for g in neighbour_grids)


def test_neighbours_are_true_hamming_neighbours():
    from hashviz.session.browse import neighbours

    rng = np.random.default_rng(0)
    bits = rng.random((200, 16)) > 0.5
    idx, dist = neighbours(bits, 7, k=10)
    brute = (bits != bits[7]).sum(1)
    brute[7] = 99
    order = np.lexsort((np.arange(200), brute))[:10]
    assert idx.tolist() == order.tolist() and dist.tolist() == brute[order].tolist()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("content, message", [
    (_npz(features=np.zeros((10, 8))), "no 'labels'"),
    (_npz(z=np.zeros((10, 8)), labels=np.zeros(9, int)), "labels have shape (9,) but z has 10 rows"),
    (_npz(z=np.full((10, 8), np.nan), labels=np.zeros(10, int)), "NaN"),
    (b"this is not a zip file", "not a readable .npz"),
])
def test_bad_uploads_show_the_error_and_the_app_keeps_working(fresh, content, message):
    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_npz").set_value(("bad.npz", content, "application/octet-stream")).run()
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors
    assert [e.value for e in at.exception] == []
    assert any(b.label == "Prepare default" for b in at.button)  # the rest of the page is still there


def test_upload_over_the_size_limit_is_refused_with_the_fix(fresh):
    """Streamlit's uploader enforces server.maxUploadSize in the browser; the app re-checks the bytes it got."""
    from streamlit import config

    from hashviz.session.runs import Workspace

    rng = np.random.default_rng(0)
    big = _npz(z=rng.standard_normal((1000, 400)).astype(np.float32), labels=np.arange(1000) % 10)  # 1.6 MB, valid
    old = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)  # MB
    try:
        at = open_app("pages/1_data.py")
        at.file_uploader(key="hv_npz").set_value(("big.npz", big, "application/octet-stream")).run()
    finally:
        config.set_option("server.maxUploadSize", old)
    errors = " ".join(e.value for e in at.error)
    assert "big.npz is 1.6 MB, over the 1 MB upload limit" in errors, errors
    assert "hashviz prepare --dataset embeddings" in _texts(at) + errors  # the hint: use the CLI
    assert [e.value for e in at.exception] == []
    assert Workspace(fresh).list_runs() == []  # nothing was saved or prepared
    assert any(b.label == "Prepare default" for b in at.button)


def test_wrong_state_dict_upload_is_refused_with_the_mismatch(fresh):
    import torch

    buf = io.BytesIO()
    torch.save({"not.a.layer": torch.zeros(3)}, buf)
    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_weights").set_value(("w.pt", buf.getvalue(), "application/octet-stream"))
    next(b for b in at.button if b.label == "Prepare").click().run()
    assert at.error and "mnist_cnn" in " ".join(e.value for e in at.error)
    assert [e.value for e in at.exception] == []


def test_export_npz_loads_back_and_uploads_as_a_run(filled, tmp_path, monkeypatch):
    from hashviz.session import compare
    from hashviz.session.runs import Workspace, stored_fitted

    key = _run_key(filled)
    ws = Workspace(filled)
    emb = ws.load_embeddings(key, 16)
    qs = {n: stored_fitted(n, ws.stored_quantizer(key, 16, n)) for n in ("sign", "hq")}
    data = compare.export_npz(emb, qs, {"provenance": {"seed": 0}})
    back = Embeddings.load(io.BytesIO(data))
    assert np.array_equal(back.z, emb.z) and np.array_equal(back.labels, emb.labels)
    assert np.array_equal(back.split, emb.split)
    with np.load(io.BytesIO(data)) as f:
        assert np.array_equal(f["codes_hq"], qs["hq"].quantizer.encode(emb.z))
        assert np.allclose(f["rotation_hq"], qs["hq"].quantizer.rotation_)
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "other_home"))

    at = open_app("pages/1_data.py")
    at.file_uploader(key="hv_npz").set_value(("export.npz", data, "application/octet-stream")).run()
    assert problems(at) == []
    job = started_job(at)  # the import runs in the background
    assert job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()
    assert problems(at) == []
    assert any("saved as a run" in s.value for s in at.success)


def test_query_params_restore_the_view(filled):
    key = _run_key(filled)
    at = open_app("pages/4_queries.py", query={"run": key, "bits": "32", "k": "7", "ties": "optimistic",
                                                "seed": "3"})
    assert problems(at) == []
    assert at.session_state["hv_bits"] == 32
    assert at.number_input(key="hv_q_k").value == 7 and at.selectbox(key="hv_q_ties").value == "optimistic"
    grids = [h.proto.body for h in at.get("html")]
    assert grids[-1].count("<img") == 7
    assert at.query_params["bits"] == "32" and at.query_params["ties"] == "optimistic"


def test_sessions_keep_their_own_objects():
    from hashviz.session.jobs import SessionObjects

    so = SessionObjects(max_sessions=2)
    so.put("a", "fit", 1)
    so.put("b", "fit", 2)
    assert so.get("a", "fit") == 1 and so.get("b", "fit") == 2
    so.put("c", "fit", 3)  # the oldest session goes first
    assert so.get("a", "fit") is None and so.get("c", "fit") == 3
    assert so.prune(lambda s: s == "c") == 1 and so.names("c") == ["fit"]


# ---- Data & model: SHC similarity pair, skipped dataset files -------------------------------------------------
def _values(v) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(x) for x in str(v.get("shape", len(a))).split(",")])
    return np.asarray(v, dtype=float)


def _figure(at, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id)
    return json.loads(chart.proto.spec)


@pytest.mark.slow
def test_shc_run_shows_class_and_centre_similarity_side_by_side(shc_home, monkeypatch, app_env):
    from hashviz.session.runs import Workspace

    monkeypatch.setenv("HASHVIZ_HOME", str(shc_home))
    ws = Workspace(shc_home)
    key = ws.list_runs()[0].key
    S, C = ws.head_similarities(key, 16)
    assert S.shape == C.shape == (10, 10) and np.allclose(np.diag(C), 1.0)
    at = open_app("pages/1_data.py", {"run": key, "bits": "16"})
    assert problems(at) == []
    assert any("SHC" in h.value for h in at.subheader)
    fig = _figure(at, "hv_shc_pair")
    left, right = fig["data"][:2]
    assert np.allclose(_values(left["z"]), S, atol=1e-4) and np.allclose(_values(right["z"]), C, atol=1e-4)
    assert left["coloraxis"] == right["coloraxis"] == "coloraxis"  # one colour scale for both
    assert left["x"] == left["y"] == right["x"] == [str(n) for n in ws.load_embeddings(key, 16).class_names]
    assert "confuses" in _texts(at)  # the one-sentence explanation


def test_other_heads_show_no_similarity_pair(filled):
    at = open_app("pages/1_data.py")
    assert problems(at) == []
    assert not any("SHC" in h.value for h in at.subheader)


def test_imagefolder_skipped_files_are_listed_after_preparing(fresh, tmp_path, monkeypatch):
    from tests.data.fakes import write_png

    monkeypatch.setenv("HASHVIZ_DATA_ROOTS", str(tmp_path))  # the app opens paths only inside its data roots
    root = tmp_path / "shapes"
    for c, colour in enumerate(((250, 20, 20), (20, 20, 250), (20, 250, 20))):
        for i in range(10):
            write_png(root / f"class{c}" / f"{i}.png", tuple(max(0, v - 9 * i) for v in colour), size=(28, 28))
    (root / "class1" / "notes.txt").write_text("not an image")
    at = open_app("pages/1_data.py")
    at.selectbox(key="hv_ds").set_value("imagefolder").run()
    at.text_input(key="hv_ds_path").input(str(root)).run()
    at.selectbox(key="hv_bb_imagefolder").set_value("mnist_cnn").run()  # ImageNet models come first for files
    at.multiselect(key="hv_bits_choice").set_value([16]).run()
    at.button(key="hv_prepare").click().run()
    job = started_job(at)
    assert job is not None and job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()  # the progress fragment sees the finished job and switches to the new run
    assert problems(at) == []
    warning = " ".join(w.value for w in at.warning)
    assert "1 file of the dataset could not be used" in warning, warning
    table = at.dataframe[0].value
    assert list(table.columns) == ["path", "reason"] and len(table) == 1
    assert table["path"][0].endswith("notes.txt") and table["reason"][0]


@pytest.mark.slow
def test_spherical_run_shows_its_random_search_rotation(tmp_path, monkeypatch, app_env):
    """SDSH is paired with the random-search rotation of its paper: prepare fits it by default and Compare and
    Queries show it next to sign / ITQ / HQ, with the numbers prepare stored."""
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "home"))
    from hashviz.session.runs import Workspace

    info = Workspace().prepare("digits", "mnist_cnn", "spherical", (16,), head_options={"epochs": 1})
    at = open_app("pages/5_compare.py", query={"run": info.key, "bits": "16"})
    assert problems(at) == []
    df = compare_long(at)
    assert list(df["quantizer"]) == ["sign", "ITQ", "HQ", "random search"]
    from hashviz.pipeline import load_prepared

    stored = load_prepared(info.key).run(16).map["random"]
    row = df[df["quantizer"] == "random search"].iloc[0]
    assert row["mAP@all (hashviz)"] == pytest.approx(stored, abs=1e-12)
    at = open_app("pages/4_queries.py", query={"run": info.key, "bits": "16"})
    assert problems(at) == [] and "random search" in _texts(at) + "".join(h.proto.body for h in at.get("html"))
    at = open_app("pages/2_rotation.py", query={"run": info.key, "bits": "16"})
    assert problems(at) == [] and at.selectbox(key="hv_rot_q").value == "random"  # the paper's own quantizer


def test_compare_shows_the_hierarchical_score_for_a_dataset_with_a_hierarchy(filled):
    """mnist5k has the digit shape tree: Compare adds the semantic similarity of the top k, equal to the library's
    evaluate() with that hierarchy (the CLI's `evaluate --hierarchy`)."""
    from hashviz.data import get_dataset
    from hashviz.pipeline import list_prepared, load_quantizer
    from hashviz.retrieval.hierarchical import class_similarity_matrix

    at = open_app("pages/5_compare.py")
    assert problems(at) == []
    df = compare_long(at)
    col = "semantic similarity@1000 (hierarchy, ties expected)"
    assert col in df.columns
    ds = get_dataset("mnist5k")
    sim = class_similarity_matrix(ds.hierarchy, ds.n_classes, ds.class_names)
    run = list_prepared()[0].run(16)
    emb = Embeddings.load(run.embeddings)
    ev = evaluate(emb, "hq", fitted=load_quantizer(run.quantizers["hq"]), top_k=1000, similarity=sim)
    row = df[(df["quantizer"] == "HQ") & (df["n_bits"] == 16)].iloc[0]
    assert row[col] == pytest.approx(ev.hierarchical_at_k, abs=1e-12)
    assert row["P@1000 (hashviz)"] <= row[col] <= 1


def test_head_options_from_the_form_reach_the_trained_head(fresh):
    """Data & model: a method's loss options (here DPSH's λ = 0, the HQ paper's setting) and the epochs are set in
    the form; only changed values are passed, and the stored head was trained with them."""
    from hashviz.store import RunStore

    at = open_app("pages/1_data.py")
    at.selectbox(key="hv_ds").set_value("digits").run()
    at.selectbox(key="hv_head").set_value("dpsh").run()
    assert at.number_input(key="hv_head_dpsh_lambda_q").value == 10.0  # the method's default is shown
    at.number_input(key="hv_head_dpsh_lambda_q").set_value(0.0).run()
    at.number_input(key="hv_head_epochs").set_value(1).run()
    at.multiselect(key="hv_bits_choice").set_value([16]).run()
    at.button(key="hv_prepare").click().run()
    job = started_job(at)
    assert job is not None and job.join(300).status == "done", (job.status, job.message, job.error)
    at.run()
    assert problems(at) == []
    (entry,) = RunStore(fresh).list("heads")
    assert entry.config["method"] == "dpsh" and entry.config["options"] == {"lambda_q": 0.0}
    assert entry.config["epochs"] == 1


@pytest.mark.slow
def test_data_page_lists_the_heads_with_codebook_accuracy(shc_home, monkeypatch, app_env):
    from hashviz.pipeline import list_prepared
    from hashviz.results import head_diagnostics
    from hashviz.store import RunStore

    monkeypatch.setenv("HASHVIZ_HOME", str(shc_home))
    at = open_app("pages/1_data.py")
    assert problems(at) == []
    table = next(d.value for d in at.dataframe if "codebook accuracy (queries)" in d.value.columns)
    res = list_prepared()[0]
    want = head_diagnostics("shc", res.run(16), RunStore(shc_home))
    assert list(table["bits"]) == [16]
    assert table["codebook accuracy (queries)"][0] == pytest.approx(want.codebook_accuracy)
    assert 0.1 < want.codebook_accuracy <= 1 and table["centres min distance"][0] >= 4


def test_heads_table_of_a_head_without_centres_has_no_empty_columns(filled):
    at = open_app("pages/1_data.py")
    table = next(d.value for d in at.dataframe if "final loss" in d.value.columns)
    assert list(table.columns) == ["bits", "training (s)", "final loss"] and list(table["bits"]) == list(SMALL_BITS)


def test_data_page_counts_items_per_class_in_each_split(filled):
    from hashviz.ui import cache

    at = open_app("pages/1_data.py")
    assert problems(at) == []
    key = at.session_state["hv_run"]
    emb = cache._embeddings(str(filled), key, SMALL_BITS[0])
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("hv_data_counts"))
    bars = {t["name"]: t for t in spec["data"]}
    assert set(bars) == {"query", "database", "train"}
    for split, t in bars.items():
        y = t["y"]
        if isinstance(y, dict):  # plotly's base64 typed array
            import base64

            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"])).tolist()
        m = emb.mask(split)
        assert list(t["x"]) == list(emb.class_names)
        assert y == [int(((emb.labels == c) & m).sum()) for c in range(len(emb.class_names))]
