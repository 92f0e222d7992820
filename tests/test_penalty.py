"""Penalty vs rotation: one head per λ × bits, each cell a fresh evaluation of the stored quantizer; the headline
from the cells; refusals; an interrupted sweep continues; the CLI and the figure builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashviz.cli import main
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError, StoppedError
from hashviz.evaluate import evaluate
from hashviz.penalty import markdown, penalised_heads, penalty_option, penalty_sweep
from hashviz.pipeline import load_quantizer, prepare
from hashviz.store import RunStore

LAMBDAS = (0.0, 0.5, 5.0)
BITS = (16,)
QUANT = ("sign", "itq", "hq")
FAST = {"epochs": 2}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("penalty_home"))
    return penalty_sweep("dpsh", LAMBDAS, BITS, dataset="digits", quantizers=QUANT, store=store,
                         head_options=FAST), store


def test_options_per_head_and_refusals():
    heads = penalised_heads()
    assert heads["dpsh"] == heads["csq"] == heads["shc"] == "lambda_q"
    assert heads["hashnet"] == "beta_gamma" and heads["shrewd"] == "kl_weight"
    assert penalty_option("DPSH") == "lambda_q"
    for head in ("cel", "orthohash", "spherical", "pca"):
        with pytest.raises(InvalidInputError, match=f"'{head}' has no quantization weight") as e:
            penalty_option(head)
        assert "dpsh (lambda_q)" in e.value.hint and "hashnet (beta_gamma)" in e.value.hint
    for bad in ((), (-1,), (float("nan"),), ("x",)):
        with pytest.raises(InvalidInputError, match="λ"):
            penalty_sweep("dpsh", bad, BITS, dataset="digits")
    with pytest.raises(InvalidInputError, match="what the sweep varies"):
        penalty_sweep("dpsh", (0,), BITS, dataset="digits", head_options={"lambda_q": 1})


def test_cells_are_fresh_evaluations_of_the_stored_heads(sweep):
    sw, store = sweep
    assert [(sw.lam(c), c.n_bits, c.quantizer) for c in sw.cells] == [
        (lam, b, q) for lam in LAMBDAS for b in BITS for q in QUANT]
    assert sw.option == "lambda_q" and sw.protocol == "hashviz" and sw.map_label == "mAP@all (hashviz)"
    z0 = None
    for lam in (0.0, 5.0):
        res = prepare("digits", "mnist_cnn", "dpsh", BITS, store=store, head_options={**FAST, "lambda_q": lam},
                      quantizers=QUANT)
        assert res.cached                         # the sweep's prepare calls are prepare's: read back here
        run = res.run(16)
        emb = Embeddings.load(run.embeddings)
        z0 = emb.z if z0 is None else z0
        for q in QUANT:
            ev = evaluate(emb, q, fitted=load_quantizer(run.quantizers[q], store))
            cell = sw.cell(lam, 16, q)
            assert cell.map == pytest.approx(ev.map, abs=1e-12)
            assert cell.quantization_error == pytest.approx(ev.quantization_error, rel=1e-9)
            assert cell.head == "dpsh" and cell.head_options == {"lambda_q": lam} and cell.head_train_seconds > 0
    assert not np.allclose(z0, emb.z)             # λ changes the head
    # a heavier penalty pulls the head's outputs towards ±1: lower quantization error of the sign codes
    assert sw.cell(5.0, 16, "sign").quantization_error < sw.cell(0.0, 16, "sign").quantization_error


def test_headline_is_computed_from_the_cells(sweep):
    sw, _ = sweep
    (row,) = sw.headline()
    best = max((sw.cell(lam, 16, "sign") for lam in (0.5, 5.0)), key=lambda c: c.map)
    assert row["best_penalised_sign"] == best.map and row["best_penalised_lambda"] == sw.lam(best)
    assert row["zero_hq"] == sw.cell(0.0, 16, "hq").map and row["zero_itq"] == sw.cell(0.0, 16, "itq").map
    assert row["difference"] == pytest.approx(row["zero_hq"] - best.map) and row["agrees"] == (row["difference"] >= 0)
    text = markdown(sw)
    assert "## Penalty vs rotation: dpsh" in text and sw.verdict() in text and "mAP@all (hashviz)" in text
    assert ("this run agrees" in sw.verdict()) == row["agrees"]
    d = sw.to_dict()
    assert [c["lambda"] for c in d["cells"]] == [sw.lam(c) for c in sw.cells] and d["headline"] == sw.headline()


def test_figure_shows_the_cells(sweep):
    from hashviz.viz.figures import penalty_vs_rotation

    sw, _ = sweep
    fig = penalty_vs_rotation(sw, 16)
    sign = [t for t in fig.data if t.name == "sign, lambda_q > 0"]
    assert len(sign) == 2                          # mAP panel and quantization-error panel
    assert list(sign[0].x) == [0.5, 5.0] and list(sign[0].y) == [sw.cell(lam, 16, "sign").map for lam in (0.5, 5.0)]
    assert list(sign[1].y) == [sw.cell(lam, 16, "sign").quantization_error for lam in (0.5, 5.0)]
    hq = [t for t in fig.data if t.name == "lambda_q = 0 + HQ"]
    assert set(hq[0].y) == {sw.cell(0.0, 16, "hq").map} and set(hq[1].y) == {sw.cell(0.0, 16, "hq").quantization_error}
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.title.text == "mAP@all (hashviz)"


def test_an_interrupted_sweep_continues(tmp_path):
    store = RunStore(tmp_path)
    state = {"lam": None}                           # a Stop press once the second λ has started

    with pytest.raises(StoppedError):
        penalty_sweep("hashnet", (0.0, 1.0), BITS, dataset="digits", quantizers=("sign",), store=store,
                      head_options=FAST, progress=lambda lam, *_: state.update(lam=lam),
                      should_stop=lambda: state["lam"] == 1.0)
    done = {e.key for e in store.list("heads")}
    assert len(done) == 1
    trained = []
    full = penalty_sweep("hashnet", (0.0, 1.0), BITS, dataset="digits", quantizers=("sign",), store=store,
                         head_options=FAST, progress=lambda lam, stage, d, n: trained.append(lam) if stage == "heads"
                         else None)
    assert done < {e.key for e in store.list("heads")} and set(trained) == {1.0}   # only the missing head trains
    assert full.option == "beta_gamma" and [full.lam(c) for c in full.cells] == [0.0, 1.0]


def test_cli_penalty_json_and_section_kept_by_table(tmp_path, capsys):
    home, out = tmp_path / "home", tmp_path / "results.md"
    argv = ["penalty", "--dataset", "digits", "--head", "csq", "--lambdas", "0", "1", "--bits", "16", "-q", "sign",
            "hq", "--epochs", "1", "--home", str(home), "--out", str(out), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    (sw,) = data["sweeps"]
    assert sw["head"] == "csq" and sw["option"] == "lambda_q" and len(sw["cells"]) == 4
    assert sw["headline"][0]["n_bits"] == 16 and "csq" in sw["verdict"]
    assert sw["bit_lengths"] == [16] and sw["lambdas"] == [0.0, 1.0] and "bits" not in sw
    text = out.read_text()
    assert "<!-- section:penalty-csq -->" in text and "## Penalty vs rotation: csq" in text
    assert main(argv) == 0                          # again: replaced, not appended
    capsys.readouterr()
    assert out.read_text().count("## Penalty vs rotation: csq") == 1
    assert main(["table", "--dataset", "digits", "--heads", "cel", "--bits", "16", "-q", "sign", "--epochs", "1",
                 "--home", str(home), "--out", str(out)]) == 0
    capsys.readouterr()
    page = out.read_text()
    assert page.startswith("# Results") and "## Penalty vs rotation: csq" in page
    assert main(["penalty", "--dataset", "digits", "--head", "orthohash", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "no quantization weight" in err and "hint: heads with one: csq (lambda_q)" in err and "dpsh" in err
    # the CLI's sweep is stored in the run store (what the app's Penalty page lists)
    from hashviz.penalty import stored_sweeps

    (stored,) = stored_sweeps(home, head="csq")
    assert stored.key == sw["key"] and [c.map for c in stored.cells] == [c["map"] for c in sw["cells"]]


def test_a_sweep_is_stored_under_its_settings_and_read_back(sweep):
    from hashviz.penalty import SWEEP_STAGE, PenaltySweep, stored_sweeps

    sw, store = sweep
    (entry,) = store.list(SWEEP_STAGE)
    assert entry.key == sw.key == store.key(sw.config()) and len(sw.run_keys) == len(LAMBDAS)
    (back,) = stored_sweeps(store, dataset="digits", backbone="mnist_cnn", head="dpsh", seed=0, dataset_options={})
    assert back == PenaltySweep.from_dict(sw.to_dict())
    assert [(back.lam(c), c.map, c.quantization_error) for c in back.cells] == [
        (sw.lam(c), c.map, c.quantization_error) for c in sw.cells]
    assert back.head_options == FAST and back.headline() == sw.headline() and back.verdict() == sw.verdict()
    for other in ({"dataset": "mnist5k"}, {"head": "csq"}, {"seed": 1}, {"dataset_options": {"path": "x"}}):
        assert stored_sweeps(store, **other) == []
    # each λ's prepared run is recorded: the cells trace back to it
    from hashviz.pipeline import load_prepared

    for lam, key in zip(LAMBDAS, sw.run_keys):
        res = load_prepared(key, store)
        assert res.config["head_options"]["lambda_q"] == lam and res.head == "dpsh"


def test_a_sweep_record_of_an_older_version_is_left_out_not_a_crash(sweep, tmp_path):
    """Older versions spelled a sweep's list of code lengths ``bits`` (now ``bit_lengths``): such a record is not
    listed (the same sweep run again recomputes only the scores; its heads are cached) and nothing raises."""
    from hashviz.penalty import SWEEP_STAGE, stored_sweeps

    sw, _ = sweep
    assert sw.config()["bit_lengths"] == list(BITS) and "bits" not in sw.config()

    def old(d):
        return {("bits" if k == "bit_lengths" else k): v for k, v in d.items()}

    store = RunStore(tmp_path)
    store.put(SWEEP_STAGE, old(sw.config()), extra={"sweep": old(sw.to_dict())})
    assert len(store.list(SWEEP_STAGE)) == 1 and stored_sweeps(store) == []
    store.put(SWEEP_STAGE, sw.config(), extra={"sweep": sw.to_dict()})
    assert [x.key for x in stored_sweeps(store)] == [sw.key]


def test_the_sentence_for_one_bit_length_is_computed_from_its_cells(sweep):
    sw, _ = sweep
    hq = sw.cell(0.0, 16, "hq").map
    best = max((sw.cell(lam, 16, "sign") for lam in LAMBDAS if lam > 0), key=lambda c: c.map)
    text = sw.verdict_at(16)
    assert f"{hq:.4f} mAP@all (hashviz)" in text and f"{best.map:.4f}" in text
    assert f"lambda_q = {sw.lam(best):g}" in text and f"{hq - best.map:+.4f}" in text
    assert ("does not agree" in text) == (hq < best.map)
    assert "needs λ = 0" in sw.verdict_at(64)          # not in the sweep
