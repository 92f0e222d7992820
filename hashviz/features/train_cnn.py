"""Training the bundled CNN (``hashviz train-backbone``): :func:`train_mnist_cnn` recreates
``hashviz/features/weights/mnist_cnn.pt`` from the mnist5k train split, :func:`mnist_cnn_accuracy` checks weights.

The registry and the loading of weights (:mod:`hashviz.features.backbones`) never train; this module does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from hashviz.errors import InvalidInputError
from hashviz.features.backbones import (
    BUNDLED_WEIGHTS,
    MNIST_MEAN,
    MNIST_STD,
    MnistCNN,
    file_sha256,
    get_backbone,
    state_dict_sha256,
)
from hashviz.fileio import write_atomic, write_text_atomic


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random rotation ±12°, scale ±10%, shift ±2.5 px (one affine warp per image); x is normalised."""
    n = len(x)
    angle = (torch.rand(n, generator=g) - 0.5) * 2 * math.radians(12)
    scale = 1 + (torch.rand(n, generator=g) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=g) - 0.5) * 2 * (2.5 / 14)
    c, s = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([c, -s, shift[:, 0]], 1), torch.stack([s, c, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    zero = -MNIST_MEAN / MNIST_STD  # background value after normalisation
    return F.grid_sample(x - zero, grid, align_corners=False, padding_mode="zeros") + zero


def _accuracy(model: MnistCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model.logits(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def mnist_cnn_accuracy(weights=None, *, part: str = "query", split_seed: int = 0) -> float:
    """Classification accuracy of the mnist_cnn weights (bundled by default) on a part of mnist5k."""
    from hashviz.data import get_dataset

    bb = get_backbone("mnist_cnn", weights)
    model = bb.load_model(keep_classifier=True)
    data = get_dataset("mnist5k", seed=split_seed)
    idx = data.indices(part)
    return _accuracy(model, bb.transform(data.load_images(idx)), torch.as_tensor(data.labels[idx]))


def train_mnist_cnn(out_path=None, seed: int = 0, progress: Callable[[int, int], None] | None = None, *,
                    epochs: int = 12, split_seed: int = 0, batch_size: int = 64) -> dict:
    """Train the bundled CNN on the mnist5k train split (2,000 images) and write its state_dict to ``out_path``
    (default: the bundled ``hashviz/features/weights/mnist_cnn.pt``) atomically, with ``<out_path>.sha256`` beside it.

    Deterministic for a given seed, torch version and thread count: seeded init, a seeded generator for order and
    augmentation, ``torch.use_deterministic_algorithms``. Adam + one-cycle schedule, light affine augmentation.
    ``progress(done_epochs, epochs)`` after each epoch. Returns accuracies (train, query), time and the file hash.
    """
    from hashviz.data import get_dataset

    if int(epochs) < 1:
        raise InvalidInputError(f"epochs must be >= 1, got {epochs}", "the bundled weights use 12 epochs")
    out = Path(out_path).expanduser() if out_path is not None else BUNDLED_WEIGHTS
    t0 = time.perf_counter()
    data = get_dataset("mnist5k", seed=split_seed)
    bb = get_backbone("mnist_cnn")
    train_idx, query_idx = data.indices("train"), data.indices("query")
    x_train = bb.transform(data.load_images(train_idx))
    y_train = torch.as_tensor(data.labels[train_idx].copy())
    x_query = bb.transform(data.load_images(query_idx))
    y_query = torch.as_tensor(data.labels[query_idx].copy())
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = torch.Generator().manual_seed(seed)
            model = MnistCNN()
            opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
            steps_per_epoch = math.ceil(len(x_train) / batch_size)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=int(epochs) * steps_per_epoch)
            for epoch in range(int(epochs)):
                model.train()
                order = torch.randperm(len(x_train), generator=g)
                for i in range(0, len(order), batch_size):
                    b = order[i:i + batch_size]
                    loss = F.cross_entropy(model.logits(_augment(x_train[b], g)), y_train[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                if progress is not None:
                    progress(epoch + 1, int(epochs))
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    model.eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda f: torch.save(state, f))
    sha = file_sha256(out)
    write_text_atomic(out.with_name(out.name + ".sha256"), f"{sha}  {out.name}\n")
    return {"path": str(out), "sha256": sha, "state_sha256": state_dict_sha256(state), "seed": int(seed),
            "split_seed": int(split_seed), "epochs": int(epochs), "n_train": len(train_idx),
            "train_accuracy": _accuracy(model, x_train, y_train), "query_accuracy": _accuracy(model, x_query, y_query),
            "seconds": time.perf_counter() - t0, "n_params": sum(p.numel() for p in model.parameters()),
            "size_bytes": out.stat().st_size, "threads": torch.get_num_threads()}
