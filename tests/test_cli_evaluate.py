import json

import numpy as np
import pytest

from hashviz.cli import main
from hashviz.embeddings import Embeddings
from hashviz.evaluate import evaluate
from hashviz.retrieval.metrics import mean_average_precision
from tests.helpers import clustered_embeddings


@pytest.fixture
def emb_file(tmp_path):
    z, labels = clustered_embeddings(n_per_class=40, n_classes=4, n_bits=16, seed=1)
    path = tmp_path / "emb.npz"
    np.savez(path, z=z, labels=labels)
    return path


def test_evaluate_json_matches_library(emb_file, capsys):
    assert main(["evaluate", str(emb_file), "--quantizer", "sign", "itq", "--json", "--top-k", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["quantizer"] for r in out["results"]] == ["sign", "itq"]
    emb = Embeddings.load(emb_file)
    # headless parity: the CLI's numbers are the library's
    lib = evaluate(emb, "sign", top_k=50, options={"random_state": 0})
    assert out["results"][0]["map"] == pytest.approx(lib.map)
    q, d = emb.part("query"), emb.part("database")
    from hashviz.codes import encode
    brute = mean_average_precision(encode(q.z), encode(d.z), q.labels, d.labels)
    assert out["results"][0]["map"] == pytest.approx(brute)
    for r in out["results"]:
        for key in ("map", "map_at_k", "p_at_k", "p_within_radius", "quantization_error", "fit_seconds"):
            assert np.isfinite(r[key])
        assert 0 <= r["map"] <= 1
    assert out["n_query"] == 16 and out["n_database"] == 144


def test_evaluate_table_output(emb_file, capsys):
    assert main(["evaluate", str(emb_file), "-q", "hq", "--loss", "l1"]) == 0
    text = capsys.readouterr().out
    assert "mAP@all" in text and "hq" in text


def test_evaluate_bad_file_gives_message_not_traceback(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 4)))
    assert main(["evaluate", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "no 'z' or 'features'" in err and "hint:" in err and "Traceback" not in err


def test_evaluate_with_a_hierarchy_adds_the_semantic_score(emb_file, tmp_path, capsys):
    """Four classes in two families: the score equals a brute-force mean over each query's top k of
    1 (same class) / 1/2 (same family) / 0, and is strict JSON without a hierarchy (NaN → null)."""
    from hashviz.codes import encode, hamming_distances

    tree = tmp_path / "tree.json"
    tree.write_text(json.dumps({"0": "even", "1": "odd", "2": "even", "3": "odd"}))
    assert main(["evaluate", str(emb_file), "-q", "sign", "--top-k", "20", "--ties", "stable", "--hierarchy",
                 str(tree), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["hierarchical_at_k"]
    emb = Embeddings.load(emb_file)
    q, d = emb.part("query"), emb.part("database")
    dist = hamming_distances(encode(q.z), encode(d.z))
    family = np.array([0, 1, 0, 1])
    total = 0.0
    for i in range(q.n):
        top = np.argsort(dist[i], kind="stable")[:20]
        sim = [1.0 if d.labels[j] == q.labels[i] else (0.5 if family[d.labels[j]] == family[q.labels[i]] else 0.0)
               for j in top]
        total += np.mean(sim)
    assert got == pytest.approx(total / q.n)
    assert main(["evaluate", str(emb_file), "-q", "sign", "--json"]) == 0
    raw = capsys.readouterr().out
    assert "NaN" not in raw and json.loads(raw)["hierarchical_at_k"] is None
    assert main(["evaluate", str(emb_file), "-q", "sign", "--hierarchy", str(tmp_path / "nope.json")]) == 2
    assert "no such hierarchy file" in capsys.readouterr().err


def test_evaluate_protocols_match_the_reference_evaluators(emb_file, capsys):
    """--protocol deephash is CalcTopMap (a file without a dataset: the preset's default, all but the last
    item); --protocol all scores the same codes under every protocol, each equal to a single-protocol run."""
    from hashviz.codes import encode
    from tests.retrieval.test_protocols import _onehot, _pm1, calc_top_map, orthohash_map

    emb = Embeddings.load(emb_file)
    q, d = emb.part("query"), emb.part("database")
    assert main(["evaluate", str(emb_file), "-q", "sign", "--protocol", "deephash", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = calc_top_map(_pm1(d.z), _pm1(q.z), _onehot(d.labels, 4), _onehot(q.labels, 4), -1)
    assert out["map"] == pytest.approx(ref, abs=1e-12) and out["map_k"] == d.n - 1
    assert out["protocol"] == "deephash" and out["map_label"] == f"mAP@{d.n - 1} (deephash)"
    assert main(["evaluate", str(emb_file), "-q", "sign", "--protocol", "orthohash", "--protocol-k", "10",
                 "--json"]) == 0
    ref = orthohash_map(_pm1(d.z), _onehot(d.labels, 4), _pm1(q.z), _onehot(q.labels, 4), 10)
    assert json.loads(capsys.readouterr().out)["map"] == pytest.approx(ref, abs=1e-12)
    assert main(["evaluate", str(emb_file), "-q", "sign", "rr", "--protocol", "all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["quantizer"], r["protocol"]) for r in rows] == [
        (qn, p) for qn in ("sign", "rr") for p in ("hashviz", "deephash", "h2q", "orthohash")]
    for r in rows:
        alone = evaluate(emb, r["quantizer"], options={"random_state": 0}, protocol=r["protocol"])
        assert r["map"] == pytest.approx(alone.map, abs=1e-12)
    assert rows[0]["map"] == pytest.approx(mean_average_precision(encode(q.z), encode(d.z), q.labels, d.labels))
    assert main(["evaluate", str(emb_file), "-q", "sign", "--protocol", "all"]) == 0
    text = capsys.readouterr().out
    assert "same codes, every protocol" in text and "spread" in text and "mAP@all (h2q)" in text
    assert main(["evaluate", str(emb_file), "--protocol", "all", "--ties", "stable"]) == 2
    assert "--ties cannot be combined" in capsys.readouterr().err
    assert main(["evaluate", str(emb_file), "--protocol-k", "0"]) == 2
    assert "protocol k must be" in capsys.readouterr().err
