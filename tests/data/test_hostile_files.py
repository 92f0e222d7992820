"""Hostile CIFAR batches and too-small datasets (issue 9 §3, §5; issue 10): refused with a message, before any
large allocation."""

from __future__ import annotations

import _codecs
import pickle
import tracemalloc

import numpy as np
import pytest
from numpy._core import multiarray

from hashviz.data import get_dataset
from hashviz.data.cifar import read_batch
from hashviz.data.splits import stratified_split
from hashviz.errors import InvalidInputError
from tests.data.fakes import write_cifar10, write_png


class _Call:
    """Pickles as ``fn(*args)`` (with ``state`` applied by BUILD when given): the shape of a forged batch."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _write_batch(tmp_path, obj, name="data_batch_2"):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / name
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


def _refused(tmp_path, needle: str) -> str:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError) as e:
            get_dataset("cifar10", root=str(tmp_path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert needle in e.value.message, e.value.message
    assert "official file" in e.value.hint
    assert peak < 50 * 2**20, f"refusing took {peak / 2**20:.0f} MiB"
    return e.value.message


def test_a_119_byte_batch_that_builds_a_huge_ndarray(tmp_path):
    """ndarray((N, 3072)) passed the restricted unpickler and allocated N × 24 KB (float64) before the layout
    check; N = 10⁹ would be 24 TB."""
    path = _write_batch(tmp_path, {b"data": _Call(np.ndarray, ((10**9, 3072),)), b"labels": [0]})
    assert path.stat().st_size < 130
    _refused(tmp_path, "numpy.ndarray(...) is called directly, which CIFAR batch files never do")


def test_reconstruct_with_a_huge_shape(tmp_path):
    _write_batch(tmp_path, {b"data": _Call(multiarray._reconstruct, (np.ndarray, (10**9, 3072), b"B")),
                            b"labels": [0]})
    _refused(tmp_path, "an array of shape (1000000000, 3072) is larger than any CIFAR batch")


def test_object_array_state_claiming_a_huge_shape(tmp_path):
    """An object array's state allocates its claimed shape before filling it (numpy checks the size of byte
    data, not of object lists)."""
    forged = _Call(multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (10**12,), np.dtype("O"), False, [1, 2]))
    _write_batch(tmp_path, {b"data": forged, b"labels": [0]})
    _refused(tmp_path, "object arrays are not part of the CIFAR format")


def test_only_latin1_byte_strings(tmp_path):
    _write_batch(tmp_path, {b"data": _Call(_codecs.encode, ("abc", "rot13")), b"labels": [0]})
    _refused(tmp_path, "only latin-1 byte strings are allowed")


@pytest.mark.parametrize("data, labels, needle", [
    (np.zeros((10, 3072)), list(range(10)), "data is float64 (10, 3072), expected uint8 rows (n, 3072)"),
    (np.zeros((10, 1024), np.uint8), list(range(10)), "data is uint8 (10, 1024)"),
    ([[0] * 3072] * 2, [0, 1], "data is list, expected uint8 rows"),
    (np.zeros((10, 3072), np.uint8), [0] * 9, "9 labels for 10 images"),
    (np.zeros((10, 3072), np.uint8), [0] * 9 + [10], "labels must be integers 0..9, one per image"),
    (np.zeros((10, 3072), np.uint8), [0] * 9 + ["cat"], "labels are not integers"),
])
def test_batches_that_do_not_follow_the_layout(tmp_path, data, labels, needle):
    _write_batch(tmp_path, {b"data": data, b"labels": labels})
    _refused(tmp_path, needle)


def test_unusual_global_names_are_not_quoted(tmp_path):
    path = _write_batch(tmp_path, {b"labels": [0]})
    raw = path.read_bytes()
    evil = b"c<script>\nx\n)R."  # GLOBAL '<script>' 'x', then an empty tuple: a call
    path.write_bytes(b"\x80\x02" + evil)
    with pytest.raises(InvalidInputError) as e:
        read_batch(path)
    assert "(an unusual name) is not allowed" in e.value.message and "script" not in e.value.message
    assert raw  # the batch was replaced


def test_the_official_layout_still_loads(tmp_path):
    written = write_cifar10(tmp_path)
    ds = get_dataset("cifar10", root=str(tmp_path))
    assert ds.images.shape == (60, 32, 32, 3)
    np.testing.assert_array_equal(ds.images[0].transpose(2, 0, 1).reshape(-1), written["data"][0])


# ---- datasets too small for a split ------------------------------------------------------------------------------
def test_a_two_image_list_file(tmp_path):
    write_png(tmp_path / "a.png", (255, 0, 0))
    write_png(tmp_path / "b.png", (0, 0, 255))
    (tmp_path / "list.txt").write_text("a.png 1 0\nb.png 0 1\n")
    with pytest.raises(InvalidInputError) as e:
        get_dataset("listfile", path=str(tmp_path / "list.txt"), image_size=8)
    assert e.value.message == ("list file list.txt has only 2 items; hashviz needs at least 3 (1 query and 2 train "
                               "items)")
    # before: "features must be a numeric (n, d) array with n >= 2, got float32 (1, 128)" after feature extraction


def test_a_two_image_folder(tmp_path):
    write_png(tmp_path / "pets" / "cat" / "c.png")
    write_png(tmp_path / "pets" / "dog" / "d.png")
    with pytest.raises(InvalidInputError, match="image folder pets has only 2 items"):
        get_dataset("imagefolder", path=str(tmp_path / "pets"), image_size=8)


def test_a_protocol_without_train_items(tmp_path):
    with pytest.raises(InvalidInputError) as e:
        get_dataset("digits", n_train_per_class=0)
    assert e.value.message.startswith("the split of digits leaves no train rows (300 query, 0 train and 1497 "
                                      "database rows of 1797)")
    assert "n_train_per_class" in e.value.hint


def test_three_images_are_enough(tmp_path):
    for name in "abc":
        write_png(tmp_path / f"{name}.png")
    (tmp_path / "list.txt").write_text("a.png 1\nb.png 1\nc.png 1\n")
    ds = get_dataset("listfile", path=str(tmp_path / "list.txt"), image_size=8)
    assert sorted(ds.split.tolist()) == [0, 0, 1]


def test_negative_seeds_are_refused_by_the_split():
    with pytest.raises(InvalidInputError, match="seed must be an integer >= 0, got -1"):
        stratified_split(np.arange(10) % 2, seed=-1)
    with pytest.raises(InvalidInputError, match="seed must be an integer >= 0"):
        get_dataset("digits", seed=-3)


def test_list_file_messages_do_not_quote_the_line(tmp_path):
    (tmp_path / "list.txt").write_text("a.png 1 0\nb.png 0 <img src=x>\nc.png\n")
    with pytest.raises(InvalidInputError) as e:
        get_dataset("listfile", path=str(tmp_path / "list.txt"))
    assert "line 2: labels must be 0 or 1, but label 2 of 3 is not" in e.value.message
    assert "img" not in e.value.message
