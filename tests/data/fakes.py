"""Small fake dataset files in the real on-disk formats, written by the tests themselves."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def cifar_rows(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows in the official channel-major layout (1024 red, 1024 green, 1024 blue)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the official files are protocol-2 pickles with bytes keys


def write_cifar10(root: Path, per_batch: int = 10, skip: tuple[str, ...] = ()) -> dict:
    """root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}; labels cycle 0..9 in every batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x = cifar_rows(per_batch, i)
        y = [j % 10 for j in range(per_batch)]
        rows.append(x)
        labels += y
        if name not in skip:
            _dump({b"batch_label": name.encode(), b"labels": y, b"data": x,
                   b"filenames": [f"img{j}.png".encode() for j in range(per_batch)]}, folder / name)
    if "batches.meta" not in skip:
        _dump({b"label_names": [f"class{c}".encode() for c in range(10)], b"num_cases_per_batch": per_batch,
               b"num_vis": 3072}, folder / "batches.meta")
    return {"data": np.concatenate(rows), "labels": np.array(labels)}


def write_cifar100(root: Path, n_train: int = 60, n_test: int = 20) -> dict:
    """root/cifar-100-python/{train, test, meta}: 10 fine classes under 2 coarse classes (fine // 5)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, n) in enumerate((("train", n_train), ("test", n_test))):
        x = cifar_rows(n, 10 + i)
        fine = [j % 10 for j in range(n)]
        _dump({b"filenames": [b"x.png"] * n, b"batch_label": name.encode(), b"fine_labels": fine,
               b"coarse_labels": [f // 5 for f in fine], b"data": x}, folder / name)
        out[name] = x
    _dump({b"fine_label_names": [f"fine{c}".encode() for c in range(10)],
           b"coarse_label_names": [b"low", b"high"]}, folder / "meta")
    return out


class MarkerPayload:
    """Unpickling this would create the marker file: the shape of a malicious pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_png(path: Path, color=(255, 0, 0), size=(20, 12), mode="RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
