"""Embeddings files at the scale of the field's benchmarks, generated deterministically (for bench_app.py).

``python benchmarks/scale_files.py OUT_DIR [--which cifar60k nus200k] [--no-thumbnails]`` writes

- ``cifar60k.npz`` — the CIFAR-10 protocol: 60,000 × 64 float32, 10 classes of 6,000, split 1,000 queries
  (100 per class), 5,000 train (500 per class, inside the database), 59,000 database; 32 × 32 RGB thumbnails
  (a class colour and stripe pattern plus noise, 184 MB) unless ``--no-thumbnails``;
- ``nus200k.npz`` — NUS-WIDE-sized: 200,000 × 128 float32, 21 labels, multi-label (1–3 labels per item, label
  frequencies falling off like NUS-WIDE's), split 2,100 queries, 10,500 train, 197,900 database; no thumbnails.

Embeddings are clustered with class structure (a class prototype per label plus Gaussian noise, turned by a
seeded random rotation so the clusters are not sign-aligned and a learned rotation has something to find). Rows
are shuffled, as real datasets are. The same seed gives the same bytes.

The files are what a new user brings: ``hashviz prepare --dataset embeddings --path FILE --home HOME``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SPECS = {
    "cifar60k": dict(n=60_000, dim=64, n_classes=10, multilabel=False, n_query=1_000, n_train=5_000),
    "nus200k": dict(n=200_000, dim=128, n_classes=21, multilabel=True, n_query=2_100, n_train=10_500),
}
CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _rotation(dim: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def single_label(n: int, dim: int, n_classes: int, *, n_query: int, n_train: int, noise: float = 1.5,
                 seed: int = 0) -> dict:
    """Arrays of a single-label file: ``z`` (n, dim) float32, ``labels`` (n,), ``split`` (n,) uint8 with
    ``n_query`` queries and ``n_train`` train items drawn evenly per class (rows shuffled)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    means = np.sign(rng.standard_normal((n_classes, dim)))
    z = (means[labels] + noise * rng.standard_normal((n, dim))) @ _rotation(dim, rng)
    split = np.full(n, 2, np.uint8)
    for c in range(n_classes):
        rows = rng.permutation(np.flatnonzero(labels == c))
        nq, nt = n_query // n_classes, n_train // n_classes
        split[rows[:nq]] = 1
        split[rows[nq:nq + nt]] = 0
    return {"z": z.astype(np.float32), "labels": labels.astype(np.int64), "split": split}


def multi_label(n: int, dim: int, n_classes: int, *, n_query: int, n_train: int, noise: float = 1.6,
                seed: int = 0) -> dict:
    """Arrays of a multi-label file: 1–3 labels per row (frequencies ∝ 1/(rank+1)), ``z`` the normalised sum of
    its labels' prototypes plus noise; ``labels`` (n, c) uint8 0/1; random queries and train items."""
    rng = np.random.default_rng(seed)
    freq = 1.0 / (np.arange(n_classes) + 1.0)
    freq /= freq.sum()
    counts = rng.choice([1, 2, 3], size=n, p=[0.55, 0.3, 0.15])
    labels = np.zeros((n, n_classes), np.uint8)
    for k in (1, 2, 3):
        rows = np.flatnonzero(counts >= k)
        labels[rows, rng.choice(n_classes, size=len(rows), p=freq)] = 1
    protos = np.sign(rng.standard_normal((n_classes, dim)))
    mix = labels.astype(np.float32) @ protos.astype(np.float32)
    mix /= np.sqrt(labels.sum(axis=1, keepdims=True))
    z = (mix + noise * rng.standard_normal((n, dim)).astype(np.float32)) @ _rotation(dim, rng).astype(np.float32)
    split = np.full(n, 2, np.uint8)
    order = rng.permutation(n)
    split[order[:n_query]] = 1
    split[order[n_query:n_query + n_train]] = 0
    return {"z": z.astype(np.float32), "labels": labels, "split": split}


def thumbnails(labels: np.ndarray, n_classes: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3): a colour and a stripe direction per class plus per-image noise."""
    rng = np.random.default_rng(seed + 1)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.empty((n_classes, size, size, 3), np.float32)
    for c in range(n_classes):
        colour = rng.integers(40, 216, size=3)
        angle = np.pi * c / n_classes
        stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 0.6)
        base[c] = colour * (0.55 + 0.45 * stripes[..., None])
    out = np.empty((len(labels), size, size, 3), np.uint8)
    for start in range(0, len(labels), 10_000):
        lab = labels[start:start + 10_000]
        noisy = base[lab] + rng.normal(0, 18, size=(len(lab), size, size, 3)).astype(np.float32)
        out[start:start + 10_000] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def make(name: str, *, with_thumbnails: bool = True, seed: int = 0) -> dict:
    """The arrays of file ``name`` (a key of :data:`SPECS`)."""
    spec = dict(SPECS[name])
    multilabel = spec.pop("multilabel")
    if multilabel:
        arrays = multi_label(**spec, seed=seed)
        arrays["class_names"] = np.array([f"concept_{i:02d}" for i in range(spec["n_classes"])], dtype=str)
    else:
        arrays = single_label(**spec, seed=seed)
        arrays["class_names"] = np.array(CIFAR_NAMES[:spec["n_classes"]], dtype=str)
        if with_thumbnails:
            arrays["thumbnails"] = thumbnails(arrays["labels"], spec["n_classes"], seed=seed)
    arrays["meta"] = np.array(json.dumps({"generated_by": "benchmarks/scale_files.py", "name": name, "seed": seed}))
    return arrays


def write(name: str, out_dir, *, with_thumbnails: bool = True, seed: int = 0) -> Path:
    """Write ``<out_dir>/<name>.npz`` (uncompressed ``np.savez``) unless it is already there; returns its path."""
    suffix = "" if with_thumbnails or SPECS[name]["multilabel"] else "_nothumbs"
    path = Path(out_dir) / f"{name}{suffix}_s{seed}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **make(name, with_thumbnails=with_thumbnails, seed=seed))
        tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--which", nargs="+", choices=list(SPECS), default=list(SPECS))
    ap.add_argument("--no-thumbnails", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in args.which:
        print(write(name, args.out_dir, with_thumbnails=not args.no_thumbnails, seed=args.seed))


if __name__ == "__main__":
    main()
