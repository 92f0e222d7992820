"""CLI: prepare (--json shape, summary, errors), datasets, backbones, train-backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hashviz.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_prepare_json_then_summary(home, capsys):
    rc = main(["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "3", "--json"])
    out = capsys.readouterr()
    assert rc == 0
    data = json.loads(out.out)  # stdout is exactly one JSON object
    assert list(data["runs"][0]) == ["n_bits", "embeddings", "map"]
    run = data["runs"][0]
    assert run["n_bits"] == 16 and Path(run["embeddings"]).is_file()
    assert Path(run["embeddings"]).is_relative_to(home / "runs")
    assert set(run["map"]) == {"sign", "itq", "hq"} and all(0 < v <= 1 for v in run["map"].values())
    assert data["cached"] is False
    # the same command without --json: read back from the store, human summary
    rc = main(["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "3"])
    text = capsys.readouterr().out
    assert rc == 0 and "read from the store" in text and str(home / "runs") in text
    line = next(ln for ln in text.splitlines() if "16 bits" in ln)
    assert f"hq {run['map']['hq']:.4f}" in line and f"sign {run['map']['sign']:.4f}" in line
    # --home wins over HASHVIZ_HOME
    rc = main(["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "3", "--json", "--home",
               str(home / "other")])
    assert json.loads(capsys.readouterr().out)["runs"][0]["embeddings"].startswith(str(home / "other"))


@pytest.mark.parametrize("argv", [["--dataset", "nope"], ["--dataset", "digits", "--head", "nope"]])
def test_unknown_names_are_refused_with_the_valid_choices(home, capsys, argv):
    """Dataset and head names come from the registries: argparse refuses others and lists the valid ones."""
    with pytest.raises(SystemExit) as e:
        main(["prepare", *argv, "--json"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'nope'" in err and "Traceback" not in err
    assert ("mnist5k" in err) if argv[1] == "nope" else ("orthohash" in err)


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "digits", "--bits", "0"], "out of range 1..1024"),
    (["--dataset", "digits", "--bits", "4096"], "out of range 1..1024"),
    (["--dataset", "digits", "--bits", "4"], "8..128"),
    (["--dataset", "digits", "--backbone", "nope"], "unknown backbone"),
    (["--dataset", "embeddings"], "path"),
])
def test_prepare_bad_inputs(home, capsys, argv, message):
    rc = main(["prepare", *argv, "--json"])
    err = capsys.readouterr()
    assert rc == 2 and message in err.err and err.out == ""
    assert "hint:" in err.err


def test_datasets_and_backbones(home, capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "mnist5k" in text and "digits" in text and "cifar10" in text
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mnist5k"]["offline"] is True and rows["mnist5k"]["default"] is True
    assert rows["cifar10"]["offline"] is False and "cifar-10-batches-py" in rows["cifar10"]["status"]
    assert main(["backbones", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mnist_cnn"]["offline"] is True and rows["mnist_cnn"]["output_dim"] == 128
    assert "resnet18" in rows


@pytest.mark.slow
def test_train_backbone_writes_loadable_weights(home, capsys):
    out = home / "cnn.pt"
    assert main(["train-backbone", "--out", str(out), "--epochs", "1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(out) and out.is_file() and info["epochs"] == 1
    state = torch.load(out, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert (home / "cnn.pt.sha256").read_text().split()[0] == info["sha256"]


def test_prepare_head_options(home, capsys):
    from hashviz.store import RunStore

    argv = ["prepare", "--dataset", "digits", "--head", "orthohash", "--bits", "16", "--epochs", "1", "--json",
            "-q", "sign"]
    assert main([*argv, "--head-option", "codebook=hadamard", "--head-option", "orthohash:margin=0.3"]) == 0
    capsys.readouterr()
    (entry,) = RunStore(home).list("heads")
    assert entry.config["options"] == {"codebook": "hadamard", "margin": 0.3}
    assert entry.extra["loss_extra"]["codebook"] == "hadamard"
    assert main([*argv, "--head-option", "csq:lambda_q=0"]) == 2
    assert "while preparing head 'orthohash'" in capsys.readouterr().err
