"""Feature extraction benchmark: images/s of resnet18 on a generated 60,000-image CIFAR-10 root, per DataLoader
worker count and batch size, against the single-process loop hashviz used before (baseline, same run, same data).

The CIFAR root is written here in the official layout at full size (``cifar-10-batches-py/data_batch_1..5`` and
``test_batch`` with 10,000 random images each, ``batches.meta``) and read back by ``get_dataset("cifar10")``. The
resnet18 weights are a seeded random state_dict saved to a temporary file and loaded as a *user weights file*
(no ImageNet weights are needed: speed does not depend on the weight values). Every configuration extracts the
first ``--n`` images (default all 60,000) with the cache off, right after the baseline on the same images (pairs, so
the shared machine's load drifts alike for both; ratio = median over pairs). The features of every configuration
are checked to equal, bit for bit, those of the first run at the same batch size, and the baseline's to 1e-4.

Also: mnist_cnn on mnist5k (for scale), mnist_cnn on a folder of JPEGs (images decoded from files, where
workers may pay), and the cache: writing 60,000 × 512 float32 features with their checksum
sidecar, and a verified cache hit against a plain ``np.load``.

    python -m benchmarks.bench_features                       # 60,000 images per configuration (hours on 2 cores)
    python -m benchmarks.bench_features --n 1024              # the first 1,024 images
    python -m benchmarks.bench_features --n 256 --workers 0 1 --batch-sizes --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hashviz.data import ImageDataset, get_dataset
from hashviz.features import extract_features, get_backbone
from hashviz.features.extract import _read_cache, _write_cache, default_batch_size
from tests.data.fakes import write_cifar10


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def baseline_loop(dataset, bb, batch_size: int) -> np.ndarray:
    """The extraction loop before this benchmark's changes: one process, transform then model, batch by batch."""
    model = bb.load_model()
    out = np.empty((dataset.n, bb.output_dim), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, dataset.n, batch_size):
            idx = np.arange(start, min(start + batch_size, dataset.n))
            out[idx] = model(bb.transform(dataset.load_images(idx))).float().cpu().numpy()
    return out


def first(dataset, n: int) -> ImageDataset:
    n = min(int(n), dataset.n)
    pixels = ({"images": dataset.images[:n]} if dataset.images is not None else
              {"paths": dataset.paths[:n], "loader": dataset.loader, "image_size": dataset.image_size})
    return ImageDataset(name=f"{dataset.name}-first{n}", labels=dataset.labels[:n], class_names=dataset.class_names,
                        split=dataset.split[:n], seed=dataset.seed, **pixels)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers are joined when a run ends)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, cpu: list | None = None):
    c, t = cpu_seconds(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    if cpu is not None:
        cpu.append(cpu_seconds() - c)
    return wall, out


def breakdown(data, bb, batch_size: int) -> tuple[float, float]:
    """Seconds spent loading + transforming and in the model, in one process: the transform's share is the most
    that workers (which only move it to other processes) could take off the wall time."""
    model = bb.load_model()
    t_tr = t_model = 0.0
    with torch.inference_mode():
        for start in range(0, data.n, batch_size):
            idx = np.arange(start, min(start + batch_size, data.n))
            t = time.perf_counter()
            x = bb.transform(data.load_images(idx))
            t_tr += time.perf_counter() - t
            t = time.perf_counter()
            model(x)
            t_model += time.perf_counter() - t
    return t_tr, t_model


def sweep(label, data, bb, configs, baseline_bs, repeats, rows, checks):
    """Each configuration (workers, batch size) is timed right after the baseline, ``repeats`` times (pairs
    baseline → configuration), so that the machine's load drifts alike for both; the ratio is the median over the
    pairs of baseline time / configuration time. One warm-up batch per batch size first (oneDNN builds its kernels
    on the first call for a shape)."""
    print(f"\n{label}: {data.n} images; baseline = the old single-process loop at batch {baseline_bs}, timed just "
          f"before each configuration, {repeats} pair(s) each (load {load()})", flush=True)
    for bs in sorted({baseline_bs, *(b for _, b in configs)}):
        extract_features(first(data, bs), bb, batch_size=bs, num_workers=0, use_cache=False)
    t_tr, t_model = breakdown(data, bb, configs[0][1])
    print(f"  one process, batch {configs[0][1]}: load + transform {data.n / t_tr:.0f} img/s, model "
          f"{data.n / t_model:.1f} img/s: the transform is {t_tr / (t_tr + t_model):.0%} of the time, the most that "
          f"workers can take off (load {load()})", flush=True)
    rows.append({"model": label, "n": data.n, "transform_s": t_tr, "model_s": t_model, "load": load()})
    print(f"  {'config':<24} {'img/s':>8} {'baseline':>9} {'ratio':>6}  {'pairs (ratio)':<14} {'CPU ms/img':>10}"
          f"  load", flush=True)
    ref = None
    by_bs = {}
    for w, bs in configs:
        pairs, cpu = [], []
        for _ in range(repeats):
            t_base, f_base = timed(lambda: baseline_loop(data, bb, baseline_bs))
            t, f = timed(lambda: extract_features(data, bb, batch_size=bs, num_workers=w, use_cache=False),  # noqa: B023
                         cpu)
            pairs.append((t_base, t))
            ref = f_base if ref is None else ref
            same = bool(np.array_equal(f, by_bs.setdefault(bs, f)))
            diff = float(np.abs(f - ref).max())
            checks.append(same and diff <= 1e-4 * max(1.0, float(np.abs(ref).max())))
        ratio = float(np.median([tb / tc for tb, tc in pairs]))
        rate = data.n / float(np.median([tc for _, tc in pairs]))
        base = data.n / float(np.median([tb for tb, _ in pairs]))
        detail = ", ".join(f"{tb / tc:.2f}" for tb, tc in pairs)
        cpu_ms = 1000 * float(np.median(cpu)) / data.n
        print(f"  {f'workers {w}, batch {bs}':<24} {rate:8.1f} {base:9.1f} {ratio:6.2f}  {detail:<14} {cpu_ms:10.1f}"
              f"  {load()}"
              f"   (same features as the first run at batch {bs}: {same}; max |Δ| vs baseline {diff:.1e})",
              flush=True)
        rows.append({"model": label, "n": data.n, "workers": w, "batch_size": bs, "img_per_s": rate,
                     "baseline_img_per_s": base, "ratio": ratio, "pairs_seconds": pairs, "cpu_ms_per_img": cpu_ms,
                     "load": load(),
                     "identical": same, "max_abs_diff_vs_baseline": diff})


def write_folder(root: Path, n: int, size: int = 256) -> None:
    """n random-noise JPEGs of size × size in 10 class folders (noise decodes slower than photos: a worst case)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.jpg", quality=90)


def bench_cache(n: int, d: int, tmp: Path, rows: list) -> None:
    arr = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    path = tmp / "features.npy"
    t_write, _ = timed(lambda: _write_cache(path, arr))
    t_plain, _ = timed(lambda: np.load(path, allow_pickle=False))
    t_read, got = timed(lambda: _read_cache(path, n, d))
    assert got is not None and np.array_equal(got, arr)
    mb = path.stat().st_size / 1e6
    print(f"\ncache, {n} × {d} float32 ({mb:.0f} MB): write + sidecar {t_write:.2f} s; verified hit (size, SHA-256, "
          f"load, finite check) {t_read:.2f} s vs plain np.load {t_plain:.2f} s (load {load()})")
    rows.append({"model": "cache", "config": f"{n}x{d}", "write_s": t_write, "verified_read_s": t_read,
                 "plain_load_s": t_plain, "load": load()})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=60_000, help="images per configuration (the first N of the root)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[32, 128],
                   help="other batch sizes for resnet18, timed with 0 workers (the workers use the default, 64)")
    p.add_argument("--repeats", type=int, default=2, help="baseline → configuration pairs per configuration")
    p.add_argument("--baseline-batch", type=int, default=256, help="the old default batch size")
    p.add_argument("--no-mnist", action="store_true", help="skip mnist_cnn on mnist5k")
    p.add_argument("--folder", type=int, default=2000, help="JPEGs in the image-folder part (0: skip it)")
    p.add_argument("--root", help="write (or reuse) the CIFAR root here instead of a temporary folder")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), CUDA {'available' if torch.cuda.is_available() else 'not available'}"
          f"; load {load()}")
    tmp = Path(tempfile.mkdtemp(prefix="hashviz-bench-features-"))
    rows, checks = [], []
    try:
        root = Path(args.root) if args.root else tmp / "cifar"
        t_write = 0.0
        if not (root / "cifar-10-batches-py" / "batches.meta").is_file():
            t_write, _ = timed(lambda: write_cifar10(root, per_batch=10_000))
        t_load, cifar = timed(lambda: get_dataset("cifar10", root=str(root)))
        size = sum(f.stat().st_size for f in (root / "cifar-10-batches-py").iterdir()) / 1e6
        print(f"CIFAR-10 root {root}: {cifar.n} images in {size:.0f} MB of official-format files; written in "
              f"{t_write:.1f} s, read by get_dataset in {t_load:.1f} s")
        torch.manual_seed(0)
        import torchvision

        weights = tmp / "resnet18-seed0.pt"
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
        bb = get_backbone("resnet18", weights=weights)
        print(f"resnet18 default batch size {default_batch_size(bb)}; weights: user file {weights.name}")
        bs0 = default_batch_size(bb)
        configs = [(w, bs0) for w in args.workers] + [(0, b) for b in args.batch_sizes if b != bs0]
        sweep("resnet18", first(cifar, args.n), bb, configs, args.baseline_batch, args.repeats, rows, checks)
        cnn_configs = [(w, 256) for w in args.workers]
        if not args.no_mnist:
            mnist = get_dataset("mnist5k")
            sweep("mnist_cnn", mnist, get_backbone("mnist_cnn"), cnn_configs, args.baseline_batch, args.repeats,
                  rows, checks)
        if args.folder:
            write_folder(tmp / "folder", args.folder)
            folder = get_dataset("imagefolder", path=str(tmp / "folder"), image_size=224)
            print(f"\nimage folder: {folder.n} JPEGs 256×256, read at 224 (decode + crop + resize per image)")
            sweep("mnist_cnn on an image folder", folder, get_backbone("mnist_cnn"), cnn_configs,
                  args.baseline_batch, args.repeats, rows, checks)
        bench_cache(60_000, 512, tmp, rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload at the end {load()}; features identical across worker counts and within 1e-4 of the baseline: "
          f"{all(checks)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
