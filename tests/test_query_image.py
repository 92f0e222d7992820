"""A new image through a run's own model (hashviz.session.query_image) and `hashviz query`: a dataset image's own
pixels give back its stored z and codes; an MNIST digit exported white on black and the same digit as a black-on-
white 280×280 RGBA canvas give the same 32-bit code and mostly their class; a synthetic "1" finds 1s; neighbours
equal a brute-force ranking; the CLI prints what the library finds; embeddings-file runs and bad files are refused
clearly. One mnist5k run (bundled CNN, CEL heads at 16 and 32 bits, 2 head epochs) is prepared per module: the
tests that use it (or prepare a run of their own) are marked slow (`make test-fast` skips them)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hashviz.cli import main
from hashviz.errors import InvalidInputError
from hashviz.session import query_image as Q
from hashviz.session.runs import Workspace

BITS = (16, 32)


def png(a: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def canvas_export(digit: np.ndarray, resample=Image.Resampling.NEAREST) -> bytes:
    """The digit inverted to black on white and enlarged to 280×280 RGBA, as the canvas sends it."""
    big = np.asarray(Image.fromarray(255 - digit).resize((280, 280), resample))
    return png(np.dstack([big, big, big, np.full_like(big, 255)]), "RGBA")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("query_home")
    Workspace(home).prepare("mnist5k", "mnist_cnn", "cel", BITS, head_options={"epochs": 2})
    return home


@pytest.fixture(scope="module")
def ws(home):
    return Workspace(home)


@pytest.fixture(scope="module")
def key(ws):
    return ws.list_runs()[0].key


@pytest.fixture(scope="module")
def model(ws, key):
    return Q.load_run_model(ws.store, key)


@pytest.fixture(scope="module")
def inputs(ws, key):
    return Q.stored_inputs(ws, key)


@pytest.fixture(scope="module")
def mnist():
    from hashviz.data import get_dataset

    return get_dataset("mnist5k", seed=0)


def first_query_of_each_class(emb) -> list[int]:
    q = np.flatnonzero(emb.mask("query"))
    return [int(q[emb.labels[q] == c][0]) for c in range(10)]


@pytest.mark.slow
def test_dataset_pixels_reproduce_stored_z_and_codes(model, inputs, mnist):
    embs, fitted = inputs
    rows = np.concatenate([np.flatnonzero(embs[16].mask("query"))[:150],
                           np.flatnonzero(embs[16].split == 2)[:150]])
    images = mnist.load_images(embs[16].ids[rows])
    for b in BITS:
        emb = embs[b]
        z = model.embed(images, b)
        np.testing.assert_allclose(z, emb.z[rows], rtol=0, atol=1e-5)
        for f in fitted[b].values():
            t_new, t_old = f.quantizer.transform(z), f.quantizer.transform(emb.z[rows])
            clear = np.abs(t_old) > 1e-4  # a coordinate this close to 0 may flip with float rounding
            assert clear.mean() > 0.99
            assert np.array_equal((t_new >= 0)[clear], (t_old >= 0)[clear]), f.id


@pytest.mark.slow
def test_one_image_alone_gives_its_stored_z(model, inputs, mnist):
    """The page encodes one image at a time (one torch thread): still the stored z."""
    emb = inputs[0][32]
    row = first_query_of_each_class(emb)[3]
    z = model.embed(mnist.load_images([emb.ids[row]]), 32)[0]
    np.testing.assert_allclose(z, emb.z[row], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_png_and_canvas_export_of_a_query_digit_agree_and_find_its_class(model, inputs, mnist):
    embs, fitted = inputs
    emb = embs[32]
    mostly = []
    for row in first_query_of_each_class(emb):
        digit = mnist.load_images([emb.ids[row]])[0]
        a = Q.query_image(model, png(digit), embs, fitted)
        b = Q.query_image(model, canvas_export(digit), embs, fitted)
        assert np.array_equal(a.image, b.image)
        for qid in fitted[32]:
            ra, rb = a.result(32, qid), b.result(32, qid)
            assert np.array_equal(ra.bits, rb.bits), (row, qid)  # the same code at 32 bits
            assert np.array_equal(ra.rows, rb.rows)
            mostly.append(int((emb.labels[ra.rows] == emb.labels[row]).sum()))
    assert np.mean(mostly) >= 8 and min(mostly) >= 4, mostly  # the top 10 is mostly the digit's class


@pytest.mark.slow
def test_a_smoothly_enlarged_canvas_digit_still_finds_its_class(model, inputs, mnist):
    embs, fitted = inputs
    emb = embs[32]
    hits = []
    for row in first_query_of_each_class(emb):
        digit = mnist.load_images([emb.ids[row]])[0]
        r = Q.query_image(model, canvas_export(digit, Image.Resampling.BILINEAR), embs, fitted).result(32, "hq")
        hits.append(int((emb.labels[r.rows] == emb.labels[row]).sum()))
        assert r.predicted == (int(emb.labels[row]),) or hits[-1] < 6
    assert np.mean(hits) >= 8, hits


@pytest.mark.slow
def test_a_thick_vertical_stroke_is_retrieved_as_ones(model, inputs):
    embs, fitted = inputs
    canvas = np.full((280, 280, 4), 255, np.uint8)
    canvas[40:240, 125:155, :3] = 0
    res = Q.query_image(model, png(canvas, "RGBA"), embs, fitted)
    for r in res.results:
        ones = int((embs[r.n_bits].labels[r.rows] == 1).sum())
        assert ones >= 8 and r.predicted == (1,), (r.n_bits, r.quantizer, embs[r.n_bits].labels[r.rows])


@pytest.mark.slow
def test_neighbours_equal_a_brute_force_ranking(inputs):
    embs, fitted = inputs
    emb = embs[16]
    rng = np.random.default_rng(0)
    for f in fitted[16].values():
        for _ in range(3):
            z = rng.standard_normal(16).astype(np.float32)
            r = Q.neighbours(z, emb, f, 25)
            db = np.flatnonzero(emb.split != 1)
            q = (f.quantizer.transform(z[None])[0] >= 0)
            bits = f.quantizer.transform(emb.z[db]) >= 0
            dist = np.array([sum(int(a) != int(b) for a, b in zip(q, row)) for row in bits])
            order = sorted(range(len(db)), key=lambda i: (dist[i], i))[:25]  # stable: ties in database order
            assert r.rows.tolist() == db[order].tolist()
            assert r.distances.tolist() == dist[order].tolist()
            assert np.array_equal(r.bits, q)
            labels = emb.labels[r.rows].tolist()
            best = max(labels.count(c) for c in set(labels))
            assert r.votes == best and labels.count(r.predicted[0]) == best


def test_majority_known_answers():
    assert Q.majority(np.array([3, 1, 1, 3, 2]), 5) == ((3,), 2)  # a tie goes to the class ranked first
    assert Q.majority(np.array([2, 2, 1]), 3) == ((2,), 2)
    multi = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]], dtype=bool)
    assert Q.majority(multi, 3) == ((0,), 3)  # only label 0 is carried by more than half
    assert Q.majority(np.array([[0, 1], [1, 0]], dtype=bool), 2) == ((0,), 1)  # none over half: most frequent
    assert Q.majority(np.zeros(0, np.int64), 3) == ((), 0)


@pytest.mark.slow
def test_embeddings_file_run_has_no_model(tmp_path):
    from hashviz.embeddings import Embeddings
    from tests.helpers import clustered_embeddings

    z, labels = clustered_embeddings()
    path = tmp_path / "mine.npz"
    Embeddings.from_arrays({"z": z, "labels": labels}).save(path)
    ws = Workspace(tmp_path / "home")
    run = ws.prepare("embeddings", dataset_options={"path": str(path)})
    with pytest.raises(InvalidInputError) as e:
        Q.load_run_model(ws.store, run.key)
    assert "embeddings file" in e.value.message and "no backbone" in e.value.message and e.value.hint
    img = tmp_path / "one.png"
    img.write_bytes(png(np.full((28, 28), 255, np.uint8)))
    assert main(["query", str(img), "--run", run.key, "--home", str(ws.home)]) == 2


# ---- the CLI ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_json_is_what_the_library_finds(tmp_path, capsys, home, key, model, inputs, mnist):
    embs, fitted = inputs
    emb = embs[32]
    row = first_query_of_each_class(emb)[7]
    path = tmp_path / "seven.png"
    path.write_bytes(canvas_export(mnist.load_images([emb.ids[row]])[0]))
    assert main(["query", str(path), "--run", key, "--home", str(home), "--top-k", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # stdout is exactly one JSON object
    lib = Q.query_image(model, path.read_bytes(), embs, fitted, k=10)
    assert [(r["n_bits"], r["quantizer"]) for r in out["results"]] == [(r.n_bits, r.quantizer) for r in lib.results]
    assert len(out["results"]) == 2 * 3  # 2 bit lengths × sign, ITQ, HQ
    for got, want in zip(out["results"], lib.results):
        assert [n["index"] for n in got["neighbours"]] == want.ids.tolist()
        assert [n["distance"] for n in got["neighbours"]] == want.distances.tolist()
        assert [n["class"] for n in got["neighbours"]] == [str(x) for x in emb.labels[want.rows]]
        assert got["code"] == "".join("1" if b else "0" for b in want.bits) and len(got["code"]) == got["n_bits"]
        assert got["predicted"] == [want.predicted_text(emb.class_names)] and got["votes"] == want.votes
    assert out["run"] == key and out["top_k"] == 10 and out["seen"]["shape"] == [28, 28]


@pytest.mark.slow
def test_cli_text_bits_quantizers_and_run_name(tmp_path, capsys, home, key, ws):
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[40:240, 125:155] = 0
    path = tmp_path / "one.png"
    path.write_bytes(png(canvas))
    name = ws.names()[key]
    assert main(["query", str(path), "--run", name, "--home", str(home), "--bits", "32", "-q", "sign", "hq",
                 "--top-k", "4"]) == 0
    text = capsys.readouterr().out
    assert "32 bits · sign · code" in text and "32 bits · HQ · code" in text and "16 bits" not in text
    assert "ITQ" not in text and "predicted 1" in text and "the network sees 28×28" in text
    lines = [ln.split() for ln in text.splitlines() if ln.strip()[:1].isdigit() and len(ln.split()) == 4]
    assert len(lines) == 2 * 4 and all(ln[2] == "1" for ln in lines)  # rank, index, class, distance


@pytest.mark.parametrize(("content", "words"), [
    (b"", "is empty"), (b"GIF89a but not really", "not"), (None, "1×1 pixels"), ("missing", "not found")])
@pytest.mark.slow
def test_cli_bad_files(tmp_path, capsys, home, key, content, words):
    path = tmp_path / "bad.png"
    if content is None:
        path.write_bytes(png(np.zeros((1, 1), np.uint8)))
    elif content != "missing":
        path.write_bytes(content)
    assert main(["query", str(path), "--run", key, "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert words in err and "hint:" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_refuses_bit_lengths_the_run_lacks(tmp_path, capsys, home, key):
    path = tmp_path / "x.png"
    path.write_bytes(png(np.eye(28, dtype=np.uint8) * 255))
    assert main(["query", str(path), "--run", key, "--home", str(home), "--bits", "64"]) == 2
    assert "no 64-bit codes" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_without_run_prepares_the_default_config(tmp_path, capsys):
    """No --run: the run of --dataset/--backbone/--head is prepared (here digits, 16 bits) and queried."""
    canvas = np.full((100, 100), 255, np.uint8)
    canvas[10:90, 40:60] = 0
    path = tmp_path / "one.png"
    path.write_bytes(png(canvas))
    assert main(["query", str(path), "--dataset", "digits", "--bits", "16", "--home", str(tmp_path / "h"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "digits" and out["seen"]["shape"] == [8, 8]
    assert {r["n_bits"] for r in out["results"]} == {16} and len(out["results"][0]["neighbours"]) == 10


def test_query_modules_load_no_ui():
    code = ("import sys, hashviz.session.query_image, hashviz.data.drawing, hashviz.viz.placement;"
            "print(','.join(m for m in ('streamlit', 'umap', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---- placement on the codes map ---------------------------------------------------------------------------------
def test_placement_known_answers():
    from hashviz.viz.placement import place_by_neighbours

    rng = np.random.default_rng(0)
    map_bits = rng.random((300, 24)) > 0.5
    layout = rng.standard_normal((300, 2))
    # an equal code: at the position(s) of the equal codes
    map_bits[[10, 20]] = map_bits[5]
    p = place_by_neighbours(map_bits[5], map_bits, layout)
    assert p.exact and sorted(p.rows.tolist()) == [5, 10, 20]
    np.testing.assert_allclose(p.xy, layout[[5, 10, 20]].mean(axis=0))
    # a new code: the mean of its k nearest by Hamming distance (ties in map order), checked by brute force
    new = rng.random(24) > 0.5
    while (map_bits == new).all(axis=1).any():
        new = rng.random(24) > 0.5
    p = place_by_neighbours(new, map_bits, layout, k=7)
    dist = np.array([int(np.sum(row != new)) for row in map_bits])
    order = sorted(range(300), key=lambda i: (dist[i], i))[:7]
    assert p.rows.tolist() == order and p.distances.tolist() == dist[order].tolist() and not p.exact
    np.testing.assert_allclose(p.xy, layout[order].mean(axis=0))
    with pytest.raises(InvalidInputError):
        place_by_neighbours(new[:8], map_bits, layout)


@pytest.mark.slow
def test_an_image_folder_file_given_as_bytes_gives_back_its_stored_z(tmp_path):
    """Colour runs: an upload goes through the dataset reader's own crop and resize, then the backbone's own
    transform — one of the folder's files, given as bytes, is encoded exactly as `prepare` encoded it."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    for c, tint in enumerate(((200, 40, 40), (40, 40, 200), (40, 200, 40))):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(12):
            noise = rng.integers(0, 55, (30 + 2 * i, 44, 3))
            Image.fromarray((np.array(tint) + noise).astype(np.uint8)).save(root / f"class{c}" / f"{i}.png")
    ws = Workspace(tmp_path / "home")
    run = ws.prepare("imagefolder", dataset_options={"path": str(root), "image_size": 32}, bit_lengths=(16,),
                     head_options={"epochs": 2})
    model = Q.load_run_model(ws.store, run.key)
    assert not model.recipe.drawable and model.recipe.size == 32
    embs, fitted = Q.stored_inputs(ws, run.key)
    emb = embs[16]
    ds = ws.load_dataset(run.key)
    for row in np.flatnonzero(emb.split == 2)[:4]:
        data = open(ds.paths[emb.ids[row]], "rb").read()
        res = Q.query_image(model, data, embs, fitted, k=5)
        np.testing.assert_allclose(res.z[16], emb.z[row], rtol=0, atol=1e-5)
        r = res.result(16, "sign")
        assert r.distances[0] == 0  # its own code is in the database
        assert row in r.rows or (r.distances == 0).all()  # itself, unless more equal codes come first


@pytest.mark.slow
@pytest.mark.parametrize("head", ["orthohash", "hashnet", "pca"])
def test_other_heads_give_back_their_stored_z(tmp_path, head):
    """Heads whose embed uses stored state — OrthoHash's BatchNorm, HashNet's β schedule (a step buffer), the
    training-free PCA projection — rebuilt from the run store give back the stored z (digits, 16 bits)."""
    ws = Workspace(tmp_path / "home")
    run = ws.prepare("digits", "mnist_cnn", head, (16,), head_options={"epochs": 2})
    model = Q.load_run_model(ws.store, run.key)
    emb = ws.load_embeddings(run.key, 16)
    ds = ws.load_dataset(run.key)
    rows = np.arange(0, emb.n, 7)
    np.testing.assert_allclose(model.embed(ds.load_images(emb.ids[rows]), 16), emb.z[rows], rtol=0, atol=1e-5)
