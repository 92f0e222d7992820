"""The results table (`python -m hashviz table`): cells equal a fresh evaluation, files parse back, checks, errors."""

from __future__ import annotations

import csv
import json
import math

import pytest

from hashviz.cli import main
from hashviz.embeddings import Embeddings
from hashviz.evaluate import Evaluation, evaluate
from hashviz.pipeline import load_quantizer, prepare
from hashviz.results import MAP_TARGET, ResultsTable, results_table
from hashviz.results_render import CSV_COLUMNS, markdown, write_csv
from hashviz.store import RunStore

HEADS = ("cel", "csq")
BITS = (16, 24)  # 24: not a power of two
QUANT = ("sign", "hq", "random")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("table_home"))
    seen = []
    t = results_table("digits", "mnist_cnn", HEADS, BITS, QUANT, store=store, seed=0, head_options={"epochs": 3},
                      progress=lambda head, stage, done, total: seen.append((head, stage)))
    return t, store, seen


@pytest.mark.slow
def test_one_cell_per_head_bits_quantizer(table):
    t, _, seen = table
    assert [(c.head, c.n_bits, c.quantizer) for c in t.cells] == [
        (h, b, q) for h in HEADS for b in BITS for q in QUANT]
    assert {h for h, _ in seen} == set(HEADS) and {"heads", "quantizers"} <= {s for _, s in seen}
    for c in t.cells:
        assert 0 < c.map <= 1 and 0 <= c.p_within_radius <= 1 and c.quantization_error >= 0
        assert c.cell_seconds == pytest.approx(c.fit_seconds + c.eval_seconds) and c.cell_seconds > 0
        assert c.head_train_seconds > 0 and c.ties == "expected" and c.top_k == min(1000, c.n_database)
        assert c.dataset == "digits" and c.backbone == "mnist_cnn"
    # the learned head beats chance (10 balanced classes → about 0.1) by a wide margin
    assert min(t.best(h, b).map for h in HEADS for b in BITS) > 0.5


@pytest.mark.slow
def test_cells_equal_a_fresh_evaluation_of_the_stored_embeddings(table):
    t, store, _ = table
    res = prepare("digits", "mnist_cnn", "csq", BITS, store=store, seed=0, head_options={"epochs": 3},
                  quantizers=QUANT)
    assert res.cached  # the table's prepare calls are the CLI's: a second call reads them back
    run = res.run(24)
    emb = Embeddings.load(run.embeddings)
    for q in ("sign", "hq"):
        ev = evaluate(emb, q, fitted=load_quantizer(run.quantizers[q], store), top_k=1000, ties="expected")
        cell = t.cell("csq", 24, q)
        assert cell.map == pytest.approx(ev.map, abs=1e-12)
        assert cell.map_at_k == pytest.approx(ev.map_at_k, abs=1e-12)
        assert cell.p_within_radius == pytest.approx(ev.p_within_radius, abs=1e-12)
        assert cell.quantization_error == pytest.approx(ev.quantization_error, rel=1e-9)


def test_checks_and_best(table):
    t, _, _ = table
    for h in HEADS:
        for b in BITS:
            cells = [t.cell(h, b, q) for q in QUANT]
            assert t.best(h, b).map == max(c.map for c in cells)
    checks = t.checks()
    hq_rows = [c for c in checks if c["check"].startswith("HQ")]
    assert len(hq_rows) == len(HEADS) * len(BITS)
    for row in hq_rows:
        d = t.cell(row["head"], row["n_bits"], "hq").map - t.cell(row["head"], row["n_bits"], "sign").map
        assert row["value"] == pytest.approx(d) and row["ok"] == (d >= 0)
    assert not [c for c in checks if c["check"].startswith("best")]  # 32 bits not in this table


def test_checks_flag_a_failing_cell():
    def cell(head, q, m):
        return Evaluation(dataset="d", backbone="b", head=head, n_bits=32, quantizer=q, map=m, map_k=20, map_at_k=m,
                          p_at_k=m, p_within_radius=m, quantization_error=0.1, fit_seconds=0.1, eval_seconds=0.1,
                          head_train_seconds=1.0, top_k=1000, radius=2, ties="expected", n_query=10, n_database=20,
                          n_train=5, seed=0)

    t = ResultsTable(dataset="d", backbone="b", heads=("a", "b"), bit_lengths=(32,), quantizers=("sign", "hq"), seed=0,
                     cells=(cell("a", "sign", 0.9), cell("a", "hq", 0.88), cell("b", "sign", 0.5),
                            cell("b", "hq", 0.6)), seconds=1.0)
    bad = {(c["check"].split()[0], c["head"]) for c in t.checks() if not c["ok"]}
    assert bad == {("HQ", "a"), ("best", "b")}  # a: HQ below sign; b: best 0.6 < target
    assert MAP_TARGET == 0.85
    text = markdown(t)
    assert "2 of 4 hold" in text and "| a | **0.9000** | 0.8800 | -0.0200 |" in text


def test_csv_and_markdown_round_trip(table, tmp_path):
    t, _, _ = table
    path = write_csv(t, tmp_path / "r.csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(t.cells)
    for row, c in zip(rows, t.cells, strict=True):
        assert (row["head"], int(row["n_bits"]), row["quantizer"]) == (c.head, c.n_bits, c.quantizer)
        assert float(row["map"]) == pytest.approx(c.map, abs=1e-6) and row["protocol"] == "hashviz"
    text = markdown(t, command="python -m hashviz table …")
    for h in HEADS:
        for b in BITS:
            assert f"| {h} | {b} | HQ | {t.cell(h, b, 'hq').map:.4f} |" in text
    assert "**16 bits**" in text and "**24 bits**" in text and "ties expected" in text


def test_cli_table_writes_files_and_reads_back(tmp_path, capsys):
    out = tmp_path / "docs" / "results.md"
    argv = ["table", "--dataset", "digits", "--heads", "cel", "--bits", "16", "-q", "sign", "hq", "--epochs", "2",
            "--home", str(tmp_path / "home"), "--out", str(out), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(c["head"], c["quantizer"]) for c in data["cells"]] == [("cel", "sign"), ("cel", "hq")]
    assert out.is_file() and out.with_suffix(".csv").is_file()
    first = out.with_suffix(".csv").read_text()
    assert main(argv) == 0  # second run: read from the store, same numbers
    capsys.readouterr()
    second = out.with_suffix(".csv").read_text()
    col = CSV_COLUMNS.index("map")
    assert [ln.split(",")[col] for ln in first.splitlines()] == [ln.split(",")[col] for ln in second.splitlines()]


@pytest.mark.parametrize("argv, message", [
    (["--bits", "4"], "8..128"),
])
def test_cli_table_bad_input(tmp_path, capsys, argv, message):
    rc = main(["table", "--dataset", "digits", "--home", str(tmp_path), "--out", str(tmp_path / "r.md"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "hint:" in err
    assert not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("argv", [["--heads", "nope"], ["-q", "nope"]])
def test_cli_table_unknown_names_list_the_valid_ones(tmp_path, capsys, argv):
    """Head and quantizer names come from the registries: argparse refuses others, naming the valid choices."""
    with pytest.raises(SystemExit) as e:
        main(["table", "--dataset", "digits", "--home", str(tmp_path), "--out", str(tmp_path / "r.md"), *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'nope'" in err and ("orthohash" in err or "itq" in err)
    assert not (tmp_path / "r.md").exists()


def test_nan_time_renders_as_dash():
    from hashviz.results_render import _s

    assert _s(math.nan) == "—" and _s(0.123) == "0.12" and _s(12.34) == "12.3"


def test_head_diagnostics(table):
    from hashviz.heads.centers import nearest_center_accuracy

    t, store, _ = table
    assert [(d.head, d.n_bits) for d in t.diagnostics] == [(h, b) for h in HEADS for b in BITS]
    cel = [d for d in t.diagnostics if d.head == "cel"]
    assert all(math.isnan(d.codebook_accuracy) and d.train_seconds > 0 for d in cel)  # cel has no centres
    res = prepare("digits", "mnist_cnn", "csq", BITS, store=store, seed=0, head_options={"epochs": 3},
                  quantizers=QUANT)
    for run in res.runs:
        d = next(x for x in t.diagnostics if x.head == "csq" and x.n_bits == run.n_bits)
        centers = store.get_key("heads", run.head_key).arrays["centers"]
        q = Embeddings.load(run.embeddings).part("query")
        assert d.codebook_accuracy == nearest_center_accuracy(q.z, q.labels, centers)
        assert d.codebook_accuracy > 0.2  # chance 0.1 (3 epochs on digits; 0.96 on the default, docs/results.md)
        assert d.centers_min_distance >= run.n_bits / 4
    assert "## Heads" in markdown(t) and "codebook accuracy" in markdown(t)


def test_hierarchical_score_per_cell(table):
    """digits has the documented shape-family hierarchy: each cell carries the mean semantic similarity of the
    top k, equal to a direct computation with the stored quantizer."""
    from hashviz.data import get_dataset
    from hashviz.retrieval.hierarchical import class_similarity_matrix, mean_semantic_similarity_at_k

    t, store, _ = table
    ds = get_dataset("digits", seed=0)
    sim = class_similarity_matrix(ds.hierarchy, ds.n_classes, ds.class_names)
    res = prepare("digits", "mnist_cnn", "cel", BITS, store=store, seed=0, head_options={"epochs": 3},
                  quantizers=QUANT)
    run = res.run(16)
    emb = Embeddings.load(run.embeddings)
    q, db = emb.part("query"), emb.part("database")
    fitted = load_quantizer(run.quantizers["hq"], store)
    want = mean_semantic_similarity_at_k(fitted.encode(q.z), fitted.encode(db.z), q.labels, db.labels, sim,
                                         min(1000, db.n))
    cell = t.cell("cel", 16, "hq")
    assert cell.hierarchical_at_k == pytest.approx(want, abs=1e-12)
    # at least the share of same-class items in the top k, at most 1
    assert cell.p_at_k <= cell.hierarchical_at_k <= 1.0
    text = markdown(t)
    assert "## Hierarchical retrieval" in text and f"{cell.hierarchical_at_k:.4f}" in text


def test_per_method_options_reach_only_their_head(tmp_path, capsys):
    out = tmp_path / "r.md"
    base = ["table", "--dataset", "digits", "--heads", "cel", "dpsh", "--bits", "16", "-q", "sign", "--epochs", "1",
            "--home", str(tmp_path / "home"), "--out", str(out)]
    assert main([*base, "--head-option", "dpsh:lambda_q=0"]) == 0
    capsys.readouterr()
    store = RunStore(tmp_path / "home")
    heads = {e.config["method"]: e.config["options"] for e in store.list("heads")}
    assert heads == {"cel": {}, "dpsh": {"lambda_q": 0}}
    assert "dpsh: {'lambda_q': 0}" in out.read_text()
    # an option for a head that is not in the table, one the method does not have, or no KEY=VALUE: clear errors
    for option, message in (("csq:lambda_q=0", "not in the table"), ("nope=1", "unknown option(s) for head method"),
                            ("lambda_q", "is not KEY=VALUE")):
        assert main([*base, "--head-option", option]) == 2
        assert message in capsys.readouterr().err


def test_heads_command_lists_methods_and_options(capsys):
    from hashviz.heads.losses import list_methods, method_options

    assert main(["heads", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_methods()
    dpsh = next(r for r in rows if r["name"] == "dpsh")
    assert dpsh["options"] == {"lambda_q": 10.0} and "Pairwise Labels" in dpsh["paper"]
    shc = next(r for r in rows if r["name"] == "shc")
    assert {"classifier_steps", "lambda_q", "quantization"} <= set(shc["options"])  # its own and CSQ's
    assert next(r for r in rows if r["name"] == "spherical")["paired_quantizers"] == ["random"]
    assert method_options("sdsh") == method_options("spherical")
    assert main(["heads"]) == 0 and "lambda_q=10.0" in capsys.readouterr().out


def test_all_heads_leave_out_hierarchy_methods_when_the_dataset_has_none():
    from hashviz.heads.losses import list_methods
    from hashviz.results import _heads

    names, left = _heads("all", has_hierarchy=False)
    assert "shrewd" not in names and [h for h, _ in left] == ["shrewd"] and "hierarchy" in left[0][1]
    assert set(names) | {"shrewd"} == set(list_methods())
    assert _heads("all", has_hierarchy=True) == (tuple(list_methods()), ())
    assert _heads(["shrewd"], has_hierarchy=False) == (("shrewd",), ())  # named: kept, its own error explains
    t = ResultsTable(dataset="d", backbone="b", heads=(), bit_lengths=(), quantizers=(), seed=0, cells=(), seconds=0.0,
                     left_out=left)
    assert "**Left out:** shrewd — needs a label hierarchy" in markdown(t)


def test_protocol_and_every_protocol_spread(table, tmp_path, capsys):
    """A table under another protocol names it everywhere; the spread rows are the same codes under each
    protocol, equal to evaluate_protocols on the stored quantizers."""
    from hashviz.evaluate import evaluate_protocols

    t, store, _ = table
    dh = results_table("digits", "mnist_cnn", HEADS, BITS, QUANT, store=store, seed=0, head_options={"epochs": 3},
                       protocol="deephash", spread_bits=16)
    c = dh.cell("csq", 16, "hq")
    assert c.protocol == "deephash" and c.ties == "stable" and c.map_k == c.n_database - 1
    assert dh.map_label == f"mAP@{c.n_database - 1} (deephash)"
    assert c.map != t.cell("csq", 16, "hq").map and c.quantization_error == t.cell("csq", 16, "hq").quantization_error
    assert [(r.head, r.quantizer, r.protocol) for r in dh.spread] == [
        (h, q, p) for h in HEADS for q in ("sign", "hq") for p in ("hashviz", "deephash", "h2q", "orthohash")]
    res = prepare("digits", "mnist_cnn", "cel", BITS, store=store, seed=0, head_options={"epochs": 3},
                  quantizers=QUANT)
    run = res.run(16)
    want = evaluate_protocols(Embeddings.load(run.embeddings), "hq", fitted=load_quantizer(run.quantizers["hq"], store))
    got = [r for r in dh.spread if r.head == "cel" and r.quantizer == "hq"]
    assert [r.map for r in got] == pytest.approx([w.map for w in want], abs=1e-12)
    text = markdown(dh)
    assert "## Same codes, every protocol (16 bits)" in text and f"## {dh.map_label} — ties stable" in text
    assert "Spread across protocols" in text and "largest" in text
    path = write_csv(dh, tmp_path / "d.csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert {r["protocol"] for r in rows} == {"deephash"} and rows[0]["map_k"] == str(c.n_database - 1)


@pytest.mark.slow
def test_training_free_baselines_in_the_table(tmp_path):
    """pca and lsh run like any head; they get their own section against the supervised heads and are not held
    to the supervised target."""
    t = results_table("digits", "mnist_cnn", ("cel", "pca", "lsh"), (32,), ("sign", "rr", "itq", "hq"),
                      store=RunStore(tmp_path), seed=0, head_options={"epochs": 2}, spread_bits=None)
    assert t.baselines == ("pca", "lsh") and not t.spread
    assert {c["head"] for c in t.checks() if c["check"].startswith("best")} == {"cel"}
    pca = {q: t.cell("pca", 32, q).map for q in ("sign", "rr", "itq", "hq")}
    assert pca["sign"] < pca["rr"] < pca["itq"]          # PCA-direct < PCA-RR < PCA-ITQ (Gong & Lazebnik)
    text = markdown(t)
    assert "## Training-free baselines" in text and "| pca (training-free) |" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("| pca | 32 |"))
    assert f"{pca['rr']:.4f}" in line and "cel" in line
    assert "Training-free `pca`: 32 bits sign" in text


# ---- an embeddings file: no backbone, no head, one row per code length -------------------------------------------
def _blobs_file(path, *, dim=24, n=400, classes=4, split=False, seed=0):
    """Gaussian blobs around class centres (a known answer: well separated, so HQ's mAP is high)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n // classes)
    z = 2.0 * rng.standard_normal((classes, dim))[labels] + rng.standard_normal((n, dim))
    arrays = {"z": z.astype(np.float32), "labels": labels}
    if split:
        s = np.full(n, 2, dtype=np.uint8)
        s[::10] = 1            # every 10th row a query
        s[1::2] = 0            # odd rows train (in the database too)
        arrays["split"] = s
    np.savez(path, **arrays)
    return path


def test_embeddings_file_table_has_one_row_per_code_length_and_true_protocol_text(tmp_path, capsys):
    from hashviz.evaluate import evaluate_protocols
    from hashviz.results import file_table

    path = _blobs_file(tmp_path / "my_codes.npz")
    store = RunStore(tmp_path / "home")
    t = results_table("embeddings", "mnist_cnn", "all", None, ("sign", "itq", "hq"), store=store,
                      dataset_options={"path": str(path)})
    assert t.from_file and t.heads == () and t.bit_lengths == (24,) and t.backbone == ""
    assert [(c.head, c.n_bits, c.quantizer) for c in t.cells] == [("", 24, q) for q in ("sign", "itq", "hq")]
    # every cell is a fresh evaluation of the stored embeddings with the stored quantizer
    res = prepare("embeddings", store=store, dataset_options={"path": str(path)}, quantizers=("sign", "itq", "hq"))
    run = res.run(24)
    emb = Embeddings.load(run.embeddings)
    for q in ("sign", "itq", "hq"):
        ev = evaluate(emb, q, fitted=load_quantizer(run.quantizers[q], store))
        assert t.cell("", 24, q).map == pytest.approx(ev.map, abs=1e-12)
        assert math.isnan(t.cell("", 24, q).head_train_seconds)          # nothing was trained
    want = evaluate_protocols(emb, "hq", fitted=load_quantizer(run.quantizers["hq"], store))
    assert [r.map for r in t.spread if r.quantizer == "hq"] == pytest.approx([w.map for w in want], abs=1e-12)
    assert t.checks() == [{"check": f"HQ − sign {t.map_label} ≥ 0", "head": "", "n_bits": 24,
                           "value": t.cell("", 24, "hq").map - t.cell("", 24, "sign").map, "detail": "",
                           "ok": t.cell("", 24, "hq").map >= t.cell("", 24, "sign").map}]
    text = markdown(t)
    n_query, n_db = int(emb.mask("query").sum()), int(emb.mask("database").sum())
    assert "Embeddings file `my_codes.npz` (400 rows, 4 classes (single-label)" in text
    assert "No backbone and no hashing head" in text and "a seeded stratified split (the file has none" in text
    assert f"{n_query:,} queries against {n_db:,} database items" in text
    for wrong in ("mnist_cnn", "one hashing head per method", "images", "head training (s)"):
        assert wrong not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| 24 | ") and "**" in ln)
    assert [c.strip("* ") for c in row.split("|")[2:5]] == [f"{t.cell('', 24, q).map:.4f}" for q in ("sign", "itq",
                                                                                                      "hq")]
    assert "## Same codes, every protocol (24 bits)" in text and "| quantizer | hashviz |" in text
    # the CLI: one row per bit length, the CSV carries the cells; no head options for a file
    out = tmp_path / "r.md"
    argv = ["table", "--dataset", "embeddings", "--path", str(path), "-q", "sign", "hq", "--home",
            str(tmp_path / "home"), "--out", str(out)]
    assert main(argv) == 0
    assert "24 bits, mAP@all (hashviz): file" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out.with_suffix(".csv"), encoding="utf-8")))
    assert [(r["head"], r["n_bits"], r["quantizer"]) for r in rows] == [("", "24", "sign"), ("", "24", "hq")]
    for extra, message in ((["--heads", "cel"], "no hashing head to train, so head method(s) cel"),
                           (["--epochs", "3"], "no hashing head to train, so head options"),
                           (["--bits", "16"], "codes of 24 bits; 16 is not among them")):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "hint:" in err
    # a file with its own split says so; asking for a length it has is fine
    own = file_table({"path": str(_blobs_file(tmp_path / "split.npz", dim=16, split=True))}, (16,), ("sign", "hq"),
                     store=store, spread_bits=None)
    assert own.bit_lengths == (16,) and not own.spread and "with its own split" in markdown(own)
    assert own.cells[0].n_query == 40
