"""prepare end to end on the small `digits` dataset: files, scores, caching, corruption, stopping, errors."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from hashviz.data import get_dataset
from hashviz.embeddings import Embeddings
from hashviz.errors import HashvizError, InvalidInputError, StoppedError
from hashviz.evaluate import evaluate
from hashviz.pipeline import format_summary, list_prepared, load_prepared, load_quantizer, prepare
from hashviz.store import RunStore, StoreWarning

FAST = {"epochs": 4}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    calls = []
    result = prepare("digits", bit_lengths=(16, 8), store=root, head_options=FAST,
                     progress=lambda s, d, n: calls.append((s, d, n)))
    return root, result, calls


def test_prepare_writes_embeddings_and_scores(prepared):
    root, result, calls = prepared
    ds = get_dataset("digits", seed=0)
    assert [r.n_bits for r in result.runs] == [16, 8] and not result.cached
    assert result.dataset == "digits" and result.backbone == "mnist_cnn" and result.head == "cel"
    for run in result.runs:
        assert run.embeddings.is_file() and run.embeddings.is_relative_to(root / "runs")
        emb = Embeddings.load(run.embeddings)
        assert emb.z.shape == (ds.n, run.n_bits) and emb.z.dtype == np.float32
        assert np.array_equal(emb.labels, ds.labels) and np.array_equal(emb.split, ds.split)
        assert np.array_equal(emb.ids, np.arange(ds.n)) and emb.class_names == ds.class_names
        assert emb.thumbnails is not None and np.array_equal(emb.thumbnails, ds.images)
        assert {"dataset": "digits", "backbone": "mnist_cnn", "head": "cel", "seed": 0}.items() <= emb.meta.items()
        assert list(run.map) == ["sign", "itq", "hq"]
        for name, value in run.map.items():
            assert 0.1 < value <= 1.0
            # the stored rotation reproduces the stored score exactly
            q = load_quantizer(run.quantizers[name], root)
            again = evaluate(emb, name, fitted=q, top_k=1000, ties="expected")
            assert again.map == pytest.approx(value, abs=1e-12)
            assert run.evaluations[name]["ties"] == "expected" and run.evaluations[name]["n_query"] == 300
    head = RunStore(root).get_key("heads", result.runs[0].head_key)
    assert head.extra["settings"]["n_train"] == int((ds.split == 0).sum())  # trained on the train split only
    assert len(head.curve()) == 4 * round(1000 / 256) and "weights.pt" in head.files
    stages = [c[0] for c in calls]
    assert stages.index("features") < stages.index("heads") < stages.index("quantizers")
    assert calls[-1] == ("quantizers", 6, 6)
    lines = format_summary(result)
    assert any(" 16 bits" in line and "hq" in line for line in lines)


def test_rerun_is_read_back(prepared):
    root, first, _ = prepared
    calls = []
    again = prepare("digits", bit_lengths=(16, 8), store=root, head_options=FAST,
                    progress=lambda s, d, n: calls.append(s))
    assert again.cached and again.key == first.key
    assert [r.map for r in again.runs] == [r.map for r in first.runs]
    assert [r.embeddings for r in again.runs] == [r.embeddings for r in first.runs]
    assert set(calls) == {"dataset"}  # no features, no heads, no quantizers
    # a subset of the bit lengths reuses every stage but gets its own prepared record
    calls.clear()
    sub = prepare("digits", bit_lengths=(8,), store=root, head_options=FAST, progress=lambda s, d, n: calls.append(s))
    assert not sub.cached and "heads" not in calls and "quantizers" not in calls
    assert sub.runs[0].map == first.run(8).map


def test_a_split_option_that_changes_the_train_rows_trains_a_new_head(prepared):
    """Heads are keyed by the rows they were fitted on: another n_train_per_class is another head, never the
    cached one (a split preset or option must not silently reuse a head trained on other rows)."""
    root, first, _ = prepared
    other = prepare("digits", bit_lengths=(8,), store=root, head_options=FAST,
                    dataset_options={"n_train_per_class": 40})
    assert not other.cached and other.run(8).head_key != first.run(8).head_key
    assert other.run(8).map != first.run(8).map
    same = prepare("digits", bit_lengths=(8,), store=root, head_options=FAST,
                   dataset_options={"n_train_per_class": 100})
    assert same.run(8).head_key == first.run(8).head_key  # the default split, spelled out: the same rows


def test_list_and_load_prepared(prepared):
    root, first, _ = prepared
    found = list_prepared(root)
    assert first.key in [r.key for r in found]
    loaded = load_prepared(first.key, root)
    assert loaded.cached and loaded.bit_lengths == (16, 8) and loaded.run(16).map == first.run(16).map
    assert load_prepared("0" * 16, root) is None
    with pytest.raises(InvalidInputError):
        loaded.run(64)


def test_a_prepared_record_of_an_older_version_is_a_cache_miss_not_a_crash(prepared, tmp_path):
    """Older versions spelled PrepareConfig's list of code lengths ``bits`` (now ``bit_lengths``). Such a record
    is still read and listed (its lengths come from its runs), the health check finds nothing wrong with it, and
    ``prepare`` with the same choices writes a record under the new spelling, reusing every stage below it."""
    from hashviz import catalog
    from hashviz.session.runs import Workspace

    root, first, _ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    store = RunStore(copy)
    entry = store.get_key("prepared", first.key)
    assert entry.config["bit_lengths"] == [16, 8] and "bits" not in entry.config
    old_config = {("bits" if k == "bit_lengths" else k): v for k, v in entry.config.items()}
    old = store.put("prepared", old_config, extra=entry.extra)
    assert store.delete_key("prepared", first.key) and old.key != first.key
    loaded = load_prepared(old.key, copy)
    assert loaded.bit_lengths == (16, 8) and loaded.run(16).map == first.run(16).map
    listed = {r.key: r.bit_lengths for r in list_prepared(copy)}
    assert listed[old.key] == (16, 8) and first.key not in listed
    assert {r.key: r.bit_lengths for r in catalog.list_runs(copy)}[old.key] == (16, 8)
    assert {i.key: i.bit_lengths for i in Workspace(copy).list_runs()}[old.key] == (16, 8)
    assert [p for p in catalog.check(copy) if p.kind == "broken_run"] == []
    calls = []
    again = prepare("digits", bit_lengths=(16, 8), store=copy, head_options=FAST,
                    progress=lambda s, d, n: calls.append(s))
    assert not again.cached and again.key == first.key  # the old record is not this config's: a miss
    assert "heads" not in calls and "quantizers" not in calls  # only the record is new
    assert [r.map for r in again.runs] == [r.map for r in first.runs]
    assert {old.key, first.key} <= {r.key for r in list_prepared(copy)}


def test_corrupt_embeddings_are_recomputed_identically(prepared, tmp_path):
    root, first, _ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = copy / first.run(16).embeddings.relative_to(root)
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    calls = []
    with pytest.warns(StoreWarning, match="corrupt"):
        again = prepare("digits", bit_lengths=(16, 8), store=copy, head_options=FAST,
                        progress=lambda s, d, n: calls.append(s))
    assert not again.cached and "heads" in calls  # recomputed, not used
    assert again.run(16).map == pytest.approx(first.run(16).map, abs=1e-9)  # deterministic
    assert np.array_equal(Embeddings.load(again.run(16).embeddings).z, Embeddings.load(first.run(16).embeddings).z)


def test_stop_leaves_no_partial_head(prepared, tmp_path):
    root, *_ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    seen = []
    before = len(RunStore(copy).list("heads"))
    with pytest.raises(StoppedError):
        prepare("digits", bit_lengths=(16,), store=copy, head_options={"epochs": 2, "lr": 1e-3},
                progress=lambda s, d, n: seen.append(s), should_stop=lambda: "heads" in seen)
    assert len(RunStore(copy).list("heads")) == before


def test_embeddings_file_skips_backbone_and_head(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    z = (rng.standard_normal((4, 12))[labels] + 0.3 * rng.standard_normal((200, 12))).astype(np.float32)
    path = tmp_path / "mine.npz"
    np.savez(path, z=z, labels=labels)
    res = prepare("embeddings", dataset_options={"path": str(path)}, store=tmp_path / "s", quantizers=("sign", "itq"))
    assert res.backbone is None and res.head is None and len(res.runs) == 1
    run = res.runs[0]
    assert run.n_bits == 12 and run.head_key is None and set(run.map) == {"sign", "itq"}
    assert np.allclose(Embeddings.load(run.embeddings).z, z)
    assert prepare("embeddings", dataset_options={"path": str(path)}, store=tmp_path / "s",
                   quantizers=("sign", "itq")).cached


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "nope"}, "unknown dataset 'nope'"),
    ({"head": "nope"}, "unknown head method 'nope'"),
    ({"backbone": "nope"}, "unknown backbone 'nope'"),
    ({"bit_lengths": (0,)}, "out of range 1..1024"),
    ({"bit_lengths": (2000,)}, "out of range 1..1024"),
    ({"bit_lengths": (4,)}, "8..128"),
    ({"bit_lengths": (256,)}, "8..128"),
    ({"bit_lengths": ()}, "no bit lengths"),
    ({"bit_lengths": (16.5,)}, "integers"),
    ({"quantizers": ("sign", "pq")}, "unknown quantizer 'pq'"),
    ({"head_options": {"margn": 0.1}}, "unknown option"),
    ({"dataset_options": {"seed": 3}}, "seed"),
])
def test_bad_inputs_have_clear_messages(tmp_path, kwargs, message):
    args = {"dataset": "digits", **kwargs}
    with pytest.raises(HashvizError, match=message):
        prepare(store=tmp_path, **args)
    assert not (tmp_path / "runs").exists()  # nothing computed before the inputs were checked


def test_skipped_image_files_reach_the_result_and_survive_a_reload(tmp_path):
    from tests.data.fakes import write_png

    root = tmp_path / "shapes"
    for c, colour in enumerate(((250, 20, 20), (20, 20, 250), (20, 250, 20))):
        for i in range(12):
            write_png(root / f"class{c}" / f"{i}.png", tuple(max(0, v - 9 * i) for v in colour), size=(28, 28))
    (root / "class1" / "readme.txt").write_text("not an image")
    (root / "class2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    kwargs = dict(bit_lengths=(16,), store=tmp_path / "home", dataset_options={"path": str(root)},
                  head_options={"epochs": 1}, quantizers=("sign",))
    res = prepare("imagefolder", "mnist_cnn", "cel", **kwargs)
    assert sorted(p.split("/")[-1] for p, _ in res.skipped) == ["broken.png", "readme.txt"]
    assert all(reason for _, reason in res.skipped)
    again = prepare("imagefolder", "mnist_cnn", "cel", **kwargs)
    assert again.cached and again.skipped == res.skipped
    assert load_prepared(res.key, tmp_path / "home").skipped == res.skipped
    assert any("2 dataset files skipped" in line for line in format_summary(res))


@pytest.mark.slow
def test_default_quantizers_add_the_head_papers_own(tmp_path):
    from hashviz.pipeline import default_quantizers

    assert default_quantizers("cel") == ("sign", "itq", "hq")
    assert default_quantizers("sdsh") == default_quantizers("spherical") == ("sign", "itq", "hq", "random")
    res = prepare("digits", "mnist_cnn", "spherical", (16,), store=tmp_path, head_options={"epochs": 1})
    assert list(res.run(16).map) == ["sign", "itq", "hq", "random"]
    assert 0 < res.run(16).map["random"] <= 1
    with pytest.raises(InvalidInputError, match="unknown head method"):
        default_quantizers("nope")


def _fresh_scores(root, run) -> dict[str, float]:
    """mAP of a fresh fit + evaluate on the embeddings that are stored now (options as stored)."""
    emb = Embeddings.load(run.embeddings)
    store = RunStore(root)
    return {name: evaluate(emb, name, options=store.get_key("quantizers", key).config["options"], top_k=1000,
                           ties="expected").map for name, key in run.quantizers.items()}


def test_replaced_embeddings_are_scored_again_never_stale(prepared, tmp_path):
    root, first, _ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    store = RunStore(copy)
    entry = store.get_key("embeddings", first.run(16).embeddings_key)
    emb = Embeddings.load(entry.file("embeddings.npz"))
    noise = np.random.default_rng(5).standard_normal(emb.z.shape).astype(np.float32)
    store.put("embeddings", entry.config, files={"embeddings.npz": replace(emb, z=noise).save}, extra=entry.extra)
    again = prepare("digits", bit_lengths=(16, 8), store=copy, head_options=FAST)  # another writer replaced the input
    assert not again.cached
    fresh = _fresh_scores(copy, again.run(16))
    for name, value in again.run(16).map.items():
        assert value == pytest.approx(fresh[name], abs=1e-9)  # the score of what is stored, not the old one
        assert value < first.run(16).map[name] - 0.3  # the replacement really changed the scores (noise)
    assert load_prepared(again.key, copy).run(16).map == again.run(16).map  # stored that way too
    assert again.run(8).quantizers == first.run(8).quantizers  # untouched inputs: their fits are reused
    assert any(f"hq {again.run(16).map['hq']:.4f}" in line for line in format_summary(again))


def test_replaced_features_never_give_stale_scores(prepared, tmp_path, monkeypatch):
    """Issue 9 §4: replacing the cached features made prepare print the old mAPs (0.97) while the stored
    embeddings scored 0.10. Here the feature extractor hands back other features (as a replaced cache would)
    and the 16-bit embeddings are damaged, so the head is trained again on the new features."""
    import hashviz.features

    root, first, _ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    real = hashviz.features.extract_features

    def replaced(*args, **kwargs):
        f = real(*args, **kwargs)
        return np.random.default_rng(1).standard_normal(f.shape).astype(f.dtype)

    monkeypatch.setattr(hashviz.features, "extract_features", replaced)
    victim = copy / first.run(16).embeddings.relative_to(root)
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="corrupt"):
        again = prepare("digits", bit_lengths=(16, 8), store=copy, head_options=FAST)
    run = again.run(16)
    fresh = _fresh_scores(copy, run)
    for name, value in run.map.items():
        assert value == pytest.approx(fresh[name], abs=1e-9)
        assert value < first.run(16).map[name] - 0.3  # features of noise: scores fall, and are reported so
    assert run.embeddings_key != first.run(16).embeddings_key  # other features → other embeddings entry
    assert set(run.quantizers.values()).isdisjoint(first.run(16).quantizers.values())  # → other quantizer fits
