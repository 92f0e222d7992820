"""At the scale of the field's benchmarks: a 60,000 × 64 CIFAR-10-protocol embeddings file (1,000 queries, 59,000
database, 5,000 train; the generator of benchmarks/scale_files.py) gives the same numbers through the CLI's
`evaluate`, the CLI's `table` and the app's Compare page — all three on the counting kernels (per-distance counts,
closed-form expected ties; no sort of the database)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.scale_files import CIFAR_NAMES, SPECS, single_label
from tests.app.conftest import compare_grid, compare_long, open_app, problems

QUANTIZERS = (("sign", "sign"), ("itq", "ITQ"), ("hq", "HQ"))


@pytest.mark.slow
def test_cli_evaluate_table_and_the_app_agree_on_a_60k_file(tmp_path, monkeypatch, app_env, capsys):
    from hashviz import cli

    spec = {k: v for k, v in SPECS["cifar60k"].items() if k != "multilabel"}
    arrays = single_label(**spec)
    assert (len(arrays["z"]), int((arrays["split"] == 1).sum()), int((arrays["split"] != 1).sum()),
            int((arrays["split"] == 0).sum())) == (60_000, 1_000, 59_000, 5_000)
    path = tmp_path / "cifar60k.npz"
    np.savez(path, **arrays, class_names=np.array(CIFAR_NAMES))
    home = tmp_path / "home"
    monkeypatch.setenv("HASHVIZ_HOME", str(home))
    assert cli.main(["prepare", "--dataset", "embeddings", "--path", str(path), "--home", str(home)]) == 0
    capsys.readouterr()
    evals = {}
    for q, _ in QUANTIZERS:
        assert cli.main(["evaluate", str(path), "--quantizer", q, "--json"]) == 0
        evals[q] = json.loads(capsys.readouterr().out)
    assert cli.main(["table", "--dataset", "embeddings", "--path", str(path), "--quantizers", "sign", "itq", "hq",
                     "--home", str(home), "--out", str(tmp_path / "table.md"), "--json"]) == 0
    cells = {c["quantizer"]: c for c in json.loads(capsys.readouterr().out)["cells"]}
    at = open_app("pages/5_compare.py")
    assert problems(at) == []
    long, grid = compare_long(at), compare_grid(at)
    assert list(grid.columns) == ["quantizer", "64 bits"]
    for q, label in QUANTIZERS:
        ev = evals[q]
        assert (ev["n_query"], ev["n_database"], ev["top_k"]) == (1_000, 59_000, 1_000)
        row = long[long["quantizer"] == label].iloc[0]
        assert row["mAP@all (hashviz)"] == pytest.approx(ev["map"], abs=1e-12)
        assert row["mAP@1000 (hashviz)"] == pytest.approx(ev["map_at_k"], abs=1e-12)
        assert row["P@1000 (hashviz)"] == pytest.approx(ev["p_at_k"], abs=1e-12)
        assert row["P@r≤2"] == pytest.approx(ev["p_within_radius"], abs=1e-12)
        assert row["quantization error"] == pytest.approx(ev["quantization_error"], rel=1e-6)
        assert row["mAP@all (hashviz) pessimistic (relevant last in ties)"] == pytest.approx(
            ev["map_pessimistic"], abs=1e-12)
        assert grid.loc[grid["quantizer"] == label, "64 bits"].item() == row["mAP@all (hashviz)"]
        assert cells[q]["map"] == pytest.approx(ev["map"], abs=1e-12)
        assert cells[q]["map_at_k"] == pytest.approx(ev["map_at_k"], abs=1e-12)
    assert evals["hq"]["map"] > evals["sign"]["map"] + 0.05  # the file has a rotation to find
