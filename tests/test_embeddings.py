import io

import numpy as np
import pytest

from hashviz.data.splits import QUERY, TRAIN, masks, stratified_split
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError


def test_round_trip_keeps_everything(tmp_path, blobs):
    z, labels = blobs
    split = stratified_split(labels, n_query_per_class=10, n_train_per_class=20, seed=3)
    emb = Embeddings(z=z, labels=labels, split=split, class_names=tuple("abcde"), meta={"seed": 3},
                     thumbnails=np.zeros((len(z), 4, 4), np.uint8))
    path = emb.save(tmp_path / "e.npz")
    back = Embeddings.load(path)
    np.testing.assert_array_equal(back.z, emb.z)
    np.testing.assert_array_equal(back.labels, labels)
    np.testing.assert_array_equal(back.split, split)
    assert back.class_names == tuple("abcde")
    assert back.meta["seed"] == 3
    assert back.thumbnails.shape == (len(z), 4, 4)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_parts_follow_protocol(blobs):
    z, labels = blobs
    split = stratified_split(labels, n_query_per_class=10, n_train_per_class=20, seed=0)
    emb = Embeddings(z=z, labels=labels, split=split)
    assert emb.part("query").n == 50
    assert emb.part("train").n == 100
    assert emb.part("database").n == 250  # train items are part of the database
    m = masks(split)
    assert not (m["query"] & m["database"]).any()
    for c in range(5):
        assert (labels[split == QUERY] == c).sum() == 10
        assert (labels[split == TRAIN] == c).sum() == 20


def test_split_is_seeded(blobs):
    _, labels = blobs
    a = stratified_split(labels, n_query_per_class=10, seed=1)
    assert np.array_equal(a, stratified_split(labels, n_query_per_class=10, seed=1))
    assert not np.array_equal(a, stratified_split(labels, n_query_per_class=10, seed=2))


def test_user_file_without_split_gets_one_and_features_alias(tmp_path, blobs):
    z, labels = blobs
    np.savez(tmp_path / "u.npz", features=z.astype(np.float64), labels=labels)
    emb = Embeddings.load(tmp_path / "u.npz")
    assert emb.z.dtype == np.float32 and emb.n == len(z)
    assert emb.part("query").n == 30  # 10% per class
    assert emb.meta["source"].endswith("u.npz")


def test_multilabel_file(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random((40, 3)) < 0.4
    y[:, 0] |= ~y.any(axis=1)
    np.savez(tmp_path / "m.npz", z=rng.standard_normal((40, 8)), labels=y.astype(np.uint8))
    emb = Embeddings.load(tmp_path / "m.npz")
    assert emb.multilabel and emb.labels.dtype == bool and emb.labels.shape == (40, 3)


def test_file_object_upload(blobs):
    z, labels = blobs
    buf = io.BytesIO()
    np.savez(buf, z=z, labels=labels)
    buf.seek(0)
    assert Embeddings.load(buf, name="upload.npz").n == len(z)


@pytest.mark.parametrize("arrays, needle", [
    ({"labels": np.zeros(5, int)}, "no 'z' or 'features'"),
    ({"z": np.zeros((5, 4))}, "no 'labels'"),
    ({"z": np.zeros((5, 4)), "labels": np.zeros(4, int)}, "labels have shape (4,) but z has 5 rows"),
    ({"z": np.full((5, 4), np.nan), "labels": np.zeros(5, int)}, "NaN"),
    ({"z": np.zeros(5), "labels": np.zeros(5, int)}, "2-D"),
    ({"z": np.zeros((5, 4)), "labels": np.array([0, 1, 2, 0.5, 1])}, "integers"),
    ({"z": np.zeros((5, 4)), "labels": np.zeros(5, int), "split": np.array([0, 1, 2, 5, 1])}, "values 0..4"),
])
def test_bad_layouts_name_the_problem(tmp_path, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InvalidInputError) as e:
        Embeddings.load(tmp_path / "bad.npz")
    assert needle in e.value.message
    assert e.value.hint


def test_pickled_objects_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(tmp_path / "evil.npz", z=np.array([Evil()], dtype=object), labels=np.zeros(1, int))
    with pytest.raises(InvalidInputError, match="does not unpickle"):
        Embeddings.load(tmp_path / "evil.npz")
    assert not marker.exists()


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(InvalidInputError, match="not a readable .npz"):
        Embeddings.load(tmp_path / "x.npz")
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(InvalidInputError, match="single array"):
        Embeddings.load(tmp_path / "y.npy")
    with pytest.raises(InvalidInputError, match="no such file"):
        Embeddings.load(tmp_path / "missing.npz")


def test_class_counts_per_split_match_a_count_by_hand_single_and_multi_label():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 200)
    split = rng.integers(0, 3, 200).astype(np.uint8)
    z = rng.standard_normal((200, 4)).astype(np.float32)
    emb = Embeddings(z=z, labels=labels, split=split, class_names=tuple("abcde"))
    masks = {p: emb.mask(p) for p in ("query", "database", "train")}
    counts = {p: emb.class_counts(m) for p, m in masks.items()}  # class 4 has no item: a zero, not a missing bar
    for name, m in masks.items():
        assert counts[name].tolist() == [sum(1 for i in range(200) if m[i] and labels[i] == c) for c in range(5)]
    multi = rng.random((200, 3)) > 0.6
    emb = Embeddings(z=z, labels=multi, split=split, class_names=tuple("abc"))
    counts = {p: emb.class_counts(m) for p, m in masks.items()}
    for name, m in masks.items():
        assert counts[name].tolist() == [sum(1 for i in range(200) if m[i] and multi[i, c]) for c in range(3)]
    assert emb.class_counts([0, 0, 5]).tolist() == (2 * multi[0] + multi[5]).tolist()  # rows, not only masks
