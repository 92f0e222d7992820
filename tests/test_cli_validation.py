"""Careless arguments (issue 9 §3, §5): refused before any work starts, with a message and never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from hashviz.cli import main
from hashviz.data import embeddings_file as emb_module
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError
from hashviz.evaluate import evaluate, fit_quantizer
from tests.helpers import clustered_embeddings


@pytest.fixture
def emb_file(tmp_path):
    z, labels = clustered_embeddings(n_per_class=20, n_classes=4, n_bits=16, seed=1)
    path = tmp_path / "emb.npz"
    np.savez(path, z=z, labels=labels)
    return path


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("flag, value, needle", [
    ("--seed", "-1", "argument --seed: must be an integer >= 0 (e.g. --seed 0), got '-1'"),
    ("--top-k", "0", "argument --top-k: must be an integer >= 1 (e.g. --top-k 1000), got '0'"),
    ("--radius", "-1", "argument --radius: must be an integer >= 0 (e.g. --radius 2), got '-1'"),
    ("--top-k", "ten", "argument --top-k: must be an integer >= 1"),
])
def test_evaluate_checks_numbers_before_reading_the_file(tmp_path, capsys, flag, value, needle):
    missing = tmp_path / "not_there.npz"  # never opened: the argument is refused first
    assert needle in usage_error(["evaluate", str(missing), flag, value], capsys)


@pytest.mark.parametrize("command", ["prepare", "table", "train-backbone"])
def test_negative_seeds_are_usage_errors_everywhere(capsys, command):
    assert "argument --seed: must be an integer >= 0" in usage_error([command, "--seed", "-1"], capsys)


def test_head_option_of_the_wrong_type_is_refused_before_loading_anything(capsys):
    # the dataset would fail to load (imagefolder without a path): the option is checked first
    code = main(["prepare", "--dataset", "imagefolder", "--head", "cel", "--head-option", "pos_weight=abc"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: head option pos_weight=abc for 'cel': pos_weight must be a finite number" in err
    assert "hint: its default is 0.5; e.g. --head-option pos_weight=0.5" in err


@pytest.mark.parametrize("option, needle", [
    ("balance=3", "balance must be true or false"),
    ("pos_weight=NaN", "pos_weight must be a finite number"),
    ("pos_wieght=0.3", "head method 'cel' has no option 'pos_wieght'"),
])
def test_other_bad_head_options(capsys, option, needle):
    assert main(["prepare", "--dataset", "imagefolder", "--head-option", option]) == 2
    assert needle in capsys.readouterr().err


def test_table_checks_options_for_the_heads_that_have_them(capsys):
    assert main(["table", "--dataset", "imagefolder", "--head-option", "dpsh:lambda_q=lots"]) == 2
    assert "lambda_q must be a finite number" in capsys.readouterr().err
    assert main(["table", "--dataset", "imagefolder", "--head-option", "lambda_q=[1]"]) == 2
    assert "head option lambda_q=[1] for 'csq': lambda_q must be a finite number" in capsys.readouterr().err


def test_hashviz_home_pointing_at_a_file(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "home.txt"
    afile.write_text("not a folder")
    monkeypatch.setenv("HASHVIZ_HOME", str(afile))
    assert main(["prepare", "--dataset", "digits", "--bits", "16", "-q", "sign"]) == 2
    err = capsys.readouterr().err
    assert f"error: HASHVIZ_HOME {afile} is a file, not a folder" in err and "Traceback" not in err
    assert "hint: point it at a folder" in err
    monkeypatch.delenv("HASHVIZ_HOME")
    err = usage_error(["prepare", "--home", str(afile / "sub")], capsys)
    assert f"argument --home: --home {afile / 'sub'} is inside {afile}, which is a file, not a folder" in err


def test_zero_row_file_in_evaluate(tmp_path, capsys):
    np.savez(tmp_path / "empty.npz", z=np.zeros((0, 16), np.float32), labels=np.zeros(0, np.int64))
    assert main(["evaluate", str(tmp_path / "empty.npz")]) == 2
    err = capsys.readouterr().err
    assert "empty.npz has no rows (z has shape (0, 16))" in err and "Traceback" not in err


def test_wide_embeddings_are_refused_before_fitting(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wide.npz", z=rng.standard_normal((40, 4096)).astype(np.float32),
             labels=np.arange(40) % 4)
    assert main(["evaluate", str(tmp_path / "wide.npz"), "-q", "hq"]) == 2
    err = capsys.readouterr().err
    assert "z has 4096 dimensions; quantizers give one bit per dimension and hashviz handles 1 to 1024 bits" in err


def test_the_cli_reads_files_over_the_app_limit(emb_file, monkeypatch, capsys):
    monkeypatch.setattr(emb_module, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(InvalidInputError, match="over the 1.0 KB limit"):
        Embeddings.load(emb_file)
    assert main(["evaluate", str(emb_file), "-q", "sign", "--json"]) == 0
    assert '"quantizer": "sign"' in capsys.readouterr().out
    with pytest.raises(InvalidInputError, match="over the 1.0 KB limit"):  # the CLI's lift ends with the command
        Embeddings.load(emb_file)


# ---- the library function: cheap checks before the fit --------------------------------------------------------
@pytest.fixture
def emb():
    z, labels = clustered_embeddings(n_per_class=20, n_classes=4, n_bits=16, seed=1)
    return Embeddings.from_arrays({"z": z, "labels": labels})


@pytest.mark.parametrize("kwargs, needle", [
    ({"top_k": 0}, "top_k must be a positive integer, got 0"),
    ({"top_k": 2.5}, "top_k must be a positive integer"),
    ({"radius": -1}, "radius must be a non-negative integer, got -1"),
    ({"ties": "random-ish"}, "unknown ties='random-ish'"),
])
def test_evaluate_refuses_bad_arguments_before_fitting(emb, kwargs, needle):
    steps = []
    with pytest.raises(InvalidInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        evaluate(emb, "hq", on_step=steps.append, **kwargs)
    assert steps == []  # not a single fit step ran


def test_evaluate_on_a_split_without_queries_says_so(emb):
    no_query = Embeddings(z=emb.z, labels=emb.labels, split=np.where(emb.split == 1, 2, emb.split))
    steps = []
    with pytest.raises(InvalidInputError) as e:
        evaluate(no_query, "sign", on_step=steps.append)
    assert e.value.message.startswith("the split leaves no query row (0 query")
    assert steps == []
    no_train = Embeddings(z=emb.z, labels=emb.labels, split=np.where(emb.split == 0, 2, emb.split))
    with pytest.raises(InvalidInputError, match="the train split has 0 rows; a quantizer needs at least 2"):
        fit_quantizer(no_train, "sign")
