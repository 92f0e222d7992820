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
