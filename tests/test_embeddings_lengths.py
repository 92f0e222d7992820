"""One embeddings file with several code lengths (z_16, z_32, …): read from headers first, loaded as one bundle per
length sharing labels/split/thumbnails, prepared as one run with a bit length each (like `prepare` from images)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from hashviz.data.dataset import digest
from hashviz.embeddings import (
    MAX_CODE_LENGTHS,
    Embeddings,
    code_lengths,
    inspect_layout,
    load_lengths,
)
from hashviz.errors import InvalidInputError
from tests.helpers import clustered_embeddings

BITS = (16, 32, 64)


def _arrays(bit_lengths=BITS, n_per_class=40, **extra) -> dict:
    """One clustered z per code length (the same rows, labels and thumbnails), like a head trained per length."""
    out = {}
    for b in bit_lengths:
        z, labels = clustered_embeddings(n_per_class=n_per_class, n_classes=5, n_bits=b, seed=b)
        out[f"z_{b}"] = z
    out["labels"] = labels
    out["class_names"] = np.array(list("abcde"))
    out["thumbnails"] = (np.arange(len(labels) * 16) % 251).astype(np.uint8).reshape(len(labels), 4, 4)
    out.update(extra)
    return out


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_lengths_gives_one_bundle_per_length_sharing_everything_else(tmp_path):
    a = _arrays()
    path = _save(tmp_path / "multi.npz", **a)
    by_bits = load_lengths(path, seed=3)
    assert list(by_bits) == list(BITS)
    first = by_bits[16]
    for b, emb in by_bits.items():
        assert emb.dim == b
        np.testing.assert_array_equal(emb.z, a[f"z_{b}"].astype(np.float32))
        np.testing.assert_array_equal(emb.labels, a["labels"])
        np.testing.assert_array_equal(emb.split, first.split)  # one seeded split for every length
        np.testing.assert_array_equal(emb.thumbnails, a["thumbnails"])
        assert emb.class_names == tuple("abcde")
    assert by_bits[32].thumbnails is first.thumbnails  # read once, shared
    # the split is the one a single-z file with these labels gets with this seed (10% queries per class)
    single = Embeddings.load(_save(tmp_path / "one.npz", z=a["z_32"], labels=a["labels"]), seed=3)
    np.testing.assert_array_equal(first.split, single.split)
    assert (first.split == 1).sum() == 20


def test_load_reads_one_length_and_needs_a_choice_when_there_are_several(tmp_path):
    a = _arrays()
    path = _save(tmp_path / "multi.npz", **a)
    emb = Embeddings.load(path, n_bits=32)
    np.testing.assert_array_equal(emb.z, a["z_32"].astype(np.float32))
    with pytest.raises(InvalidInputError, match=r"holds 3 code lengths \(16, 32, 64 bits\)") as e:
        Embeddings.load(path)
    assert "n_bits=" in e.value.hint and "load_lengths" in e.value.hint
    with pytest.raises(InvalidInputError, match="has no 48-bit embeddings") as e:
        Embeddings.load(path, n_bits=48)
    assert e.value.hint == "its code lengths: 16, 32, 64"
    # one z_<bits> alone needs no choice; a z file is checked against the width asked for
    z24 = np.hstack([a["z_16"], a["z_16"][:, :8]])
    assert Embeddings.load(_save(tmp_path / "z24.npz", z_24=z24, labels=a["labels"])).dim == 24
    plain = _save(tmp_path / "plain.npz", z=a["z_16"], labels=a["labels"])
    assert Embeddings.load(plain, n_bits=16).dim == 16
    with pytest.raises(InvalidInputError, match="'z' has 16 columns, not 32"):
        Embeddings.load(plain, n_bits=32)


def test_one_length_is_read_and_counted_alone(tmp_path):
    """Embeddings.load(n_bits=…) neither reads nor counts the other lengths against the size limit."""
    a = _arrays()
    path = _save(tmp_path / "multi.npz", **a)
    n = len(a["labels"])
    shared = a["labels"].nbytes + a["class_names"].nbytes + a["thumbnails"].nbytes
    need_16 = shared + a["z_16"].nbytes
    assert Embeddings.load(path, n_bits=16, max_bytes=need_16).dim == 16
    with pytest.raises(InvalidInputError, match="over the"):
        Embeddings.load(path, n_bits=16, max_bytes=need_16 - 1)
    total = shared + sum(a[f"z_{b}"].nbytes for b in BITS)
    assert len(load_lengths(path, max_bytes=total)) == 3
    with pytest.raises(InvalidInputError, match="over the"):
        load_lengths(path, max_bytes=total - 1)
    assert inspect_layout(path, max_bytes=total) == {16: n, 32: n, 64: n}
    with pytest.raises(InvalidInputError, match="uncompressed, over the") as e:
        inspect_layout(path, max_bytes=total - 1)
    assert "open it by path from a data folder" in e.value.hint


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(z_32=a["z_32"][:, :24]), r"z_32 has shape \(200, 24\); z_32 must be \(n, 32\)"),
    (lambda a: a.update(z_32=a["z_32"][:150]), "z_32 has 150 rows but z_16 has 200"),
    (lambda a: a.update(z=a["z_16"]), r"has both 'z' and per-length arrays \(z_16, z_32, z_64\)"),
    (lambda a: a.update(features=a["z_16"]), "has both 'features' and per-length arrays"),
    (lambda a: a.pop("labels"), "has no 'labels' array"),
    (lambda a: a.update({f"z_{b}": np.zeros((200, b)) for b in range(1, MAX_CODE_LENGTHS + 2)}),
     f"hashviz takes at most {MAX_CODE_LENGTHS} code lengths per file"),
    (lambda a: a.update(z_32=np.full((200, 32), np.nan)), "NaN"),
])
def test_bad_multi_length_files_are_refused_with_what_is_wrong(tmp_path, change, message):
    a = _arrays()
    change(a)
    path = _save(tmp_path / "bad.npz", **a)
    with pytest.raises(InvalidInputError, match=message):
        load_lengths(path)
    if "NaN" not in message:  # values are checked when loaded; everything else already from the headers
        with pytest.raises(InvalidInputError, match=message):
            inspect_layout(path)


def test_member_names_that_only_look_like_lengths_are_ignored(tmp_path):
    """z_0, z_016, z_x and z_12345 are not code lengths (not read, not counted): only z_<1..9999>."""
    a = _arrays(bit_lengths=(16,))
    path = _save(tmp_path / "odd.npz", **a, z_0=np.zeros((3, 1)), z_016=np.zeros((3, 1)), z_x=np.zeros(2),
                 z_12345=np.zeros((3, 1)))
    assert code_lengths(path) == (16,)
    assert list(load_lengths(path)) == [16]


def test_code_lengths_from_the_headers(tmp_path):
    a = _arrays()
    assert code_lengths(_save(tmp_path / "m.npz", **a)) == BITS
    assert code_lengths(_save(tmp_path / "s.npz", z=a["z_32"], labels=a["labels"])) == (32,)
    assert code_lengths(io.BytesIO(_npz_bytes(features=a["z_16"], labels=a["labels"]))) == (16,)
    single = load_lengths(tmp_path / "s.npz")
    assert list(single) == [32] and single[32].dim == 32


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# ---- the file as a run ---------------------------------------------------------------------------------------
def test_prepare_makes_one_bit_length_per_z_array(tmp_path):
    from hashviz.codes import pack_bits, to_bits
    from hashviz.data.sources import load_embeddings_dataset
    from hashviz.pipeline import prepare
    from hashviz.retrieval.metrics import mean_average_precision

    a = _arrays()
    path = _save(tmp_path / "multi.npz", **a)
    res = prepare("embeddings", dataset_options={"path": str(path)}, store=tmp_path / "home", source_name="multi")
    assert res.bit_lengths == BITS and not res.cached
    for b in BITS:
        run = res.run(b)
        stored = Embeddings.load(run.embeddings, max_bytes=None)
        np.testing.assert_array_equal(stored.z, a[f"z_{b}"].astype(np.float32))
        np.testing.assert_array_equal(stored.thumbnails, a["thumbnails"])
        assert stored.meta["n_bits"] == b and set(run.map) == {"sign", "itq", "hq"}
        # the stored sign mAP is the sign codes of this length's z, scored query vs database
        q, db = stored.part("query"), stored.part("database")
        expect = mean_average_precision(pack_bits(to_bits(q.z)), pack_bits(to_bits(db.z)), q.labels, db.labels)
        assert run.map["sign"] == pytest.approx(expect, abs=1e-9)
    again = prepare("embeddings", dataset_options={"path": str(path)}, store=tmp_path / "home")
    assert again.cached and again.key == res.key and again.bit_lengths == BITS
    # a one-length file keeps the fingerprint it always had, so its existing runs keep their keys
    one = _save(tmp_path / "one.npz", z=a["z_32"], labels=a["labels"])
    ds = load_embeddings_dataset(one)
    assert ds.fingerprint == digest("embeddings", ds.embeddings.z, ds.embeddings.labels, ds.embeddings.split)
    assert load_embeddings_dataset(path).fingerprint != ds.fingerprint


def test_cli_prepare_takes_every_length_and_evaluate_asks_for_one(tmp_path, monkeypatch, capsys):
    from hashviz.cli import main

    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "home"))
    path = _save(tmp_path / "multi.npz", **_arrays())
    assert main(["prepare", "--dataset", "embeddings", "--path", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["n_bits"] for r in data["runs"]] == list(BITS)
    assert main(["evaluate", str(path), "-q", "sign"]) == 2
    err = capsys.readouterr().err
    assert "holds 3 code lengths (16, 32, 64 bits)" in err and "prepare --dataset embeddings" in err
