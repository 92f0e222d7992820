"""Training a hashing head on cached backbone features: ``fit_head_steps`` → ``Iterator[TrainStep]``.

One head per bit length. The loss (any registered :class:`~hashviz.heads.losses.base.HeadLoss`) is optimised
together with the head: Adam on ``head.parameters() + loss.parameters()``, mini-batches of the train split drawn
by a seeded ``torch.Generator``, a cosine learning-rate decay to 0 over the run, one :class:`TrainStep` yielded per
optimiser step (so a progress bar or a live chart can follow it; stop by no longer iterating).

Determinism: the same inputs and seed give the same head, whatever else the caller does with torch's global
random state between steps — initialisation runs under ``torch.manual_seed(seed)`` inside ``fork_rng`` and the
training keeps its own random state (dropout) that is swapped in for each step and out again.

Usage::

    run = fit_head_steps(train_features, train_labels, method="cel", n_bits=32, seed=0)
    for step in run:                      # TrainStep(step, epoch, loss, terms, total_steps)
        bar.update(1)
    result = run.result()                 # HeadResult: head, loss, curve
    z = result.embed(all_features)        # float32 (n, 32) = loss.embed(head(features)) in eval mode
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from hashviz import defaults
from hashviz.errors import InvalidInputError
from hashviz.heads.losses import HeadLoss, get_loss, get_method
from hashviz.heads.model import HashHead
from hashviz.validate import check_choice, check_int

DEFAULT_METHOD = defaults.HEAD
DEFAULT_EPOCHS = defaults.HEAD_EPOCHS
DEFAULT_BATCH_SIZE = defaults.HEAD_BATCH_SIZE
DEFAULT_LR = defaults.HEAD_LR
DEFAULT_WEIGHT_DECAY = defaults.HEAD_WEIGHT_DECAY
DEFAULT_HIDDEN: tuple[int, ...] = defaults.HEAD_HIDDEN
DEFAULT_DROPOUT = defaults.HEAD_DROPOUT
MIN_HEAD_BITS, MAX_HEAD_BITS = 8, 128


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step of a head's training: ``step`` 1..``total_steps``, ``epoch`` passes so far (float),
    ``loss`` the mini-batch loss, ``terms`` the loss's named parts."""

    step: int
    epoch: float
    loss: float
    terms: Mapping[str, float] = field(default_factory=dict)
    total_steps: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["terms"] = dict(self.terms)
        return d


def labels_to_targets(labels, n_classes: int | None = None) -> torch.Tensor:
    """(n,) int or (n, c) 0/1 labels → float32 (n, c) one-hot / multi-hot tensor."""
    y = np.asarray(labels)
    if y.ndim == 1:
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
            raise InvalidInputError("single labels must be integers >= 0", "map classes to 0..c-1")
        c = int(n_classes) if n_classes is not None else (int(y.max()) + 1 if y.size else 0)
        if y.size and y.max() >= c:
            raise InvalidInputError(f"label {int(y.max())} is out of range for {c} classes",
                                    "n_classes must exceed the largest label")
        out = torch.zeros((len(y), c), dtype=torch.float32)
        out[torch.arange(len(y)), torch.as_tensor(y.astype(np.int64))] = 1.0
        return out
    if y.ndim == 2:
        if n_classes is not None and y.shape[1] != int(n_classes):
            raise InvalidInputError(f"labels have {y.shape[1]} columns, expected {n_classes}", "one column per class")
        return torch.as_tensor(y.astype(np.float32))
    raise InvalidInputError(f"labels must be (n,) or (n, c), got shape {y.shape}", "one label (row) per item")


def check_head_bits(n_bits) -> int:
    """n_bits for a hashing head: an integer in 8..128 (else InvalidInputError)."""
    return check_int(n_bits, "the n_bits of a hashing head", lo=MIN_HEAD_BITS, hi=MAX_HEAD_BITS,
                     expected=f"an integer in {MIN_HEAD_BITS}..{MAX_HEAD_BITS}",
                     hint="the usual lengths are 16, 32, 48 and 64 bits")


def _as_features(features) -> torch.Tensor:
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or not np.issubdtype(x.dtype, np.number):
        raise InvalidInputError(f"features must be a numeric (n, d) array with n >= 2, got {x.dtype} {x.shape}",
                                "pass the backbone features of the train split")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InvalidInputError("features contain NaN or infinite values", "recompute the backbone features")
    return torch.from_numpy(x)


def embed_features(head: HashHead, loss: HeadLoss, features, *, batch_size: int = 4096,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """z = loss.embed(head(features)) in eval mode, float32 (n, n_bits)."""
    x = _as_features(features) if np.asarray(features).shape[0] >= 2 else torch.as_tensor(
        np.asarray(features, dtype=np.float32))
    head_mode, loss_mode = head.training, loss.training
    head.eval()
    loss.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), int(batch_size)):
                out.append(loss.embed(head(x[i:i + int(batch_size)].to(device))).float().cpu())
    finally:
        head.train(head_mode)
        loss.train(loss_mode)
    return torch.cat(out).numpy() if out else np.zeros((0, head.n_bits), dtype=np.float32)


@dataclass
class HeadResult:
    """A trained (or stopped) head with its loss, the training curve and whether all steps ran."""

    head: HashHead
    loss: HeadLoss
    method: str
    n_bits: int
    curve: list[TrainStep]
    completed: bool
    settings: dict

    def embed(self, features, *, batch_size: int = 4096) -> np.ndarray:
        return embed_features(self.head, self.loss, features, batch_size=batch_size)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Head and loss tensors in one flat dict (``head.*``, ``loss.*``), for ``torch.save``."""
        out = {f"head.{k}": v.detach().cpu().clone() for k, v in self.head.state_dict().items()}
        out.update({f"loss.{k}": v.detach().cpu().clone() for k, v in self.loss.state_dict().items()})
        return out

    def extra(self) -> dict:
        return dict(self.loss.extra())

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.loss.state_arrays().items()}


def load_head(state: Mapping[str, torch.Tensor], *, head_config: Mapping, method: str, n_classes: int,
              multilabel: bool = False, options: Mapping | None = None) -> tuple[HashHead, HeadLoss]:
    """Rebuild a head and its loss from :meth:`HeadResult.state_dict` (e.g. loaded with weights_only=True)."""
    head = HashHead(int(head_config["in_dim"]), int(head_config["n_bits"]), tuple(head_config.get("hidden", ())),
                    float(head_config.get("dropout", 0.0)))
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    loss = get_loss(method, head.n_bits, n_classes, multilabel=multilabel, **dict(options or {}))
    loss_state = {k[5:]: v for k, v in state.items() if k.startswith("loss.")}
    if loss_state:
        loss.load_state_dict(loss_state, strict=False)
    return head.eval(), loss.eval()


class HeadTraining(Iterator[TrainStep]):
    """The iterator :func:`fit_head_steps` returns; after (or while) iterating, :meth:`result` gives the head."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, method: str, n_bits: int, hierarchy: Any,
                 epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
                 hidden: tuple[int, ...], dropout: float, options: dict, multilabel: bool, schedule: str,
                 progress: Callable | None, num_threads: int | None = 1) -> None:
        self.num_threads = num_threads
        self.method, self.n_bits, self.epochs = method, n_bits, epochs
        self.settings = {"method": method, "n_bits": n_bits, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                         "weight_decay": weight_decay, "seed": seed, "hidden": list(hidden), "dropout": dropout,
                         "options": dict(options), "schedule": schedule, "n_train": int(len(x)),
                         "in_dim": int(x.shape[1]), "n_classes": int(y.shape[1]), "multilabel": multilabel}
        self._x, self._y = x, y
        n = len(x)
        self.trainable = bool(get_method(method).trainable)
        if not self.trainable:  # a fixed projection: linear head, no steps (training settings do not apply)
            hidden, dropout, epochs = (), 0.0, 0
            self.epochs = 0
            self.settings.update({"epochs": 0, "hidden": [], "dropout": 0.0, "trainable": False})
        self.n_batches = max(1, round(n / batch_size))
        self.total_steps = self.n_batches * epochs
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._gen = torch.Generator().manual_seed(seed)
            self.loss = get_loss(method, n_bits, int(y.shape[1]), multilabel=multilabel, **options)
            self.head = HashHead(int(x.shape[1]), n_bits, hidden, dropout)
            self.method = self.settings["method"] = self.loss.name
            self.head.set_input_stats(x)
            self.loss.setup(x, y, hierarchy=hierarchy, generator=self._gen, progress=progress)
            if not self.trainable:
                self.loss.init_head(self.head, x, generator=self._gen)
            self._rng_state = torch.get_rng_state()
        self.curve: list[TrainStep] = []
        self.step = 0
        self._it = self._run()
        if not self.trainable:
            self.optimizer = self.scheduler = None
            return
        params = [p for p in list(self.head.parameters()) + list(self.loss.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        if schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, self.total_steps) / self.total_steps)))
        else:
            self.scheduler = None

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    def __next__(self) -> TrainStep:
        return next(self._it)

    def __iter__(self) -> HeadTraining:
        return self

    def _run(self) -> Iterator[TrainStep]:
        x, y = self._x, self._y
        n = len(x)
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=self._gen)
            for b, idx in enumerate(torch.tensor_split(order, self.n_batches)):
                threads = torch.get_num_threads()
                if self.num_threads and threads != self.num_threads:
                    torch.set_num_threads(self.num_threads)
                try:
                    value, terms = self._step(x[idx], y[idx], idx)
                finally:
                    if torch.get_num_threads() != threads:
                        torch.set_num_threads(threads)
                self.step += 1
                rec = TrainStep(step=self.step, epoch=epoch + (b + 1) / self.n_batches, loss=float(value.detach()),
                                terms={k: float(v) for k, v in terms.items()}, total_steps=self.total_steps)
                self.curve.append(rec)
                yield rec
        self.head.eval()
        self.loss.eval()

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            self.head.train()
            self.loss.train()
            value, terms = self.loss(self.head(xb), yb, idx)
            if not torch.isfinite(value):
                raise InvalidInputError(f"the {self.method} loss became {float(value)} at step {self.step + 1}",
                                        "lower the learning rate or check the features for extreme values")
            self.optimizer.zero_grad(set_to_none=True)
            value.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self._rng_state = torch.get_rng_state()
        return value, terms

    def result(self) -> HeadResult:
        """The head as trained so far (``completed`` says whether every step ran), in eval mode."""
        self.head.eval()
        self.loss.eval()
        return HeadResult(head=self.head, loss=self.loss, method=self.method, n_bits=self.n_bits,
                          curve=list(self.curve), completed=self.finished, settings=dict(self.settings))


def fit_head_steps(features_train, labels_train, *, method: str = DEFAULT_METHOD, n_bits: int,
                   hierarchy: Any = None, epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH_SIZE,
                   lr: float = DEFAULT_LR, seed: int = 0, hidden: Sequence[int] = DEFAULT_HIDDEN,
                   dropout: float = DEFAULT_DROPOUT, weight_decay: float = DEFAULT_WEIGHT_DECAY,
                   options: Mapping | None = None, n_classes: int | None = None, schedule: str = "cosine",
                   progress: Callable | None = None, num_threads: int | None = 1) -> HeadTraining:
    """Train a :class:`HashHead` with head method ``method`` on the TRAIN split's features and labels.

    ``features_train`` (n, d) float; ``labels_train`` (n,) int or (n, c) 0/1 (multi-label); ``n_classes``
    defaults to the largest label + 1 (give it when the train split may miss classes). ``options`` go to the
    loss class. Validation, seeding and the loss's ``setup`` (``progress(stage, done, total)`` may be called
    there) run now; ``num_threads`` caps torch's CPU threads during each step (1 is fastest for this small MLP
    on a busy machine; ``None`` leaves torch's setting) and is restored after each step. The returned
    :class:`HeadTraining` yields one :class:`TrainStep` per optimiser step (``epochs × round(n / batch_size)`` in
    all) and gives the head with ``.result()``. A training-free method (``pca``, ``lsh``: ``trainable = False``)
    gets a linear head set by its ``init_head`` now; the iterator is empty and the training settings are ignored.
    """
    n_bits = check_head_bits(n_bits)
    x = _as_features(features_train)
    y = labels_to_targets(labels_train, n_classes)
    if len(y) != len(x):
        raise InvalidInputError(f"{len(x)} feature rows but {len(y)} labels", "one label (row) per feature row")
    if y.shape[1] < 2:
        raise InvalidInputError(f"the train labels have {y.shape[1]} class(es); a hashing head needs at least 2",
                                "check the dataset labels and the train split")
    multilabel = np.asarray(labels_train).ndim == 2
    if not get_method(method).trainable:  # pca, lsh: a fixed projection; the training settings do not apply
        return HeadTraining(x, y, method=str(method), n_bits=n_bits, hierarchy=hierarchy, epochs=0,
                            batch_size=max(1, len(x)), lr=0.0, weight_decay=0.0, seed=int(seed), hidden=(),
                            dropout=0.0, options=dict(options or {}), multilabel=multilabel, schedule="constant",
                            progress=progress, num_threads=num_threads)
    check_int(epochs, "epochs", lo=1, hint=f"the default is {DEFAULT_EPOCHS}")
    check_int(batch_size, "batch_size", lo=2, hint=f"the default is {DEFAULT_BATCH_SIZE}")
    if not float(lr) > 0 or not math.isfinite(float(lr)):
        raise InvalidInputError(f"lr must be a positive number, got {lr!r}", f"the default is {DEFAULT_LR}")
    if not float(weight_decay) >= 0:
        raise InvalidInputError(f"weight_decay must be >= 0, got {weight_decay!r}", "the default is 1e-4")
    check_choice(schedule, "schedule", ("cosine", "constant"), hint="choose 'cosine' (the default) or 'constant'")
    return HeadTraining(x, y, method=str(method), n_bits=n_bits, hierarchy=hierarchy, epochs=int(epochs),
                        batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay), seed=int(seed),
                        hidden=tuple(int(h) for h in hidden), dropout=float(dropout), options=dict(options or {}),
                        multilabel=multilabel, schedule=schedule, progress=progress, num_threads=num_threads)


def fit_head(features_train, labels_train, *, on_step: Callable[[TrainStep], Any] | None = None,
             should_stop: Callable[[], bool] | None = None, **kwargs) -> HeadResult:
    """Run :func:`fit_head_steps` to the end (or until ``should_stop()``/``on_step`` returns True/False)."""
    run = fit_head_steps(features_train, labels_train, **kwargs)
    for step in run:
        if on_step is not None and on_step(step) is False:
            break
        if should_stop is not None and should_stop():
            break
    return run.result()
