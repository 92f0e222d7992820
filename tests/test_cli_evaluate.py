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
