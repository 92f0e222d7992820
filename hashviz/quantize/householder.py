"""Householder quantization (HQ). Schwengber, Sorensen, Chierichetti et al., "Deep Hashing via Householder
Quantization" (2023).

The rotation is a product of n_bits Householder reflections, R = H_1 ... H_n with H_i = I - 2 v_i v_i^T / ||v_i||^2,
and the v_i (columns of an n_bits x n_bits matrix) are the trainable parameters. They start at the unit vectors
e_i, so R = -I at step 0: every bit is flipped, every Hamming distance is unchanged, and retrieval at step 0 is
exactly the sign quantizer's. Rows are rescaled to norm sqrt(n_bits) first (``preprocess="sphere"``, the paper's
setting). The loss is one of :data:`hashviz.quantize.objectives.LOSSES` on the rotated batch Z = X R.

Two schedules:

- ``schedule="paper"`` reproduces the authors' runs: plain SGD (no momentum), batch 128, 300 epochs, lr 0.1
  (0.01 for ``bit_var``), rows shuffled every epoch by a generator seeded with ``random_state``.
- ``schedule="fast"`` (default, ours): full-batch steps (batches of at most 131,072 rows for larger sets), R
  formed once per step in compact WY form (one Gram matrix, one triangular solve, two small matmuls), the
  gradient in closed form (for l2: dL/dR = 2 (X^T X R - X^T S) / N, i.e. one thin matmul X R, one sign and one
  thin matmul X^T S; pulled back to the v_i by the WY derivative — no autograd graph), Adam (lr 0.01) for 200
  steps. For l2 the step follows the gradient of a Huber-smoothed l2 (sgn z -> clamp(z / tau, -1, 1), tau
  annealed geometrically from 2 to 0.01): the exact l2 is piecewise quadratic with a kink wherever an entry crosses 0,
  full-batch descent on it stalls at the first kinks (minibatch noise is what lets the paper's SGD keep
  improving), and the annealed smoothing plays the role of that noise deterministically. The loss reported is
  always the exact l2. It reaches the paper schedule's final loss tens of times sooner; see docs/quantizers.md
  for the reasoning and docs/benchmarks.md for the measurements.

``fit_steps`` yields one :class:`FitStep` per optimiser update. The step-k record describes ``rotation_`` after k
updates: its ``loss`` and ``quantization_error`` are measured on the batch the next update uses (computed by
that update's forward pass, so reporting is free), and on the full training set for the last step. With the
default full-batch schedule every record is on the full training set. ``rotation_`` is recomputed from the v_i
in float64 whenever it is read, so it is orthogonal to ~1e-15 after every step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from hashviz.errors import InvalidInputError, NotFittedError
from hashviz.quantize.base import BaseQuantizer, FitStep
from hashviz.validate import check_choice, check_int

LOSS_NAMES = ("l2", "l1", "bit_var", "min_entry")
SCHEDULES = ("fast", "paper")

#: the authors' settings
PAPER_BATCH, PAPER_EPOCHS, PAPER_LR, PAPER_LR_BIT_VAR = 128, 300, 0.1, 0.01
#: ours
FAST_LR, FAST_STEPS, FAST_MAX_BATCH = 0.01, 200, 131_072
#: l2 in the default schedule: the gradient of a Huber-smoothed l2 (sgn -> clamp(z / tau, -1, 1)), tau annealed
#: geometrically from FAST_TAU[0] to FAST_TAU[1] (in units of the rms entry of the rotated rows: 1 for sphere rows)
FAST_TAU = (2.0, 0.01)


def householder_rotation(V: np.ndarray) -> np.ndarray:
    """H_1 ... H_k in float64 from the columns of V (compact WY form; sequential product as a fallback).

    Computed in torch on one thread (small matrices; see :data:`hashviz.quantize.objectives.TORCH_THREADS`).
    """
    import torch

    from hashviz.quantize.objectives import householder_product, householder_product_sequential, torch_threads

    with torch_threads():
        Vt = torch.as_tensor(np.asarray(V, dtype=np.float64))
        R = householder_product(Vt)
        eye = torch.eye(R.shape[0], dtype=R.dtype)
        if not float((R.T @ R - eye).abs().max()) <= 1e-10:   # ill-conditioned T: multiply the reflections out
            R = householder_product_sequential(Vt)
        return R.numpy()


class HouseholderQuantizer(BaseQuantizer):
    """HQ: rotation = product of n_bits Householder reflections trained on a quantization loss.

    Options: ``loss`` in ("l2", "l1", "bit_var", "min_entry"); ``schedule`` "fast" (default) or "paper";
    ``lr`` (default 0.01 for Adam in "fast"; 0.1, or 0.01 for bit_var, for plain SGD in "paper"); ``batch_size``
    (default: full batch up to 131,072 rows in "fast", 128 in "paper"); ``epochs`` or ``steps`` (not both;
    defaults 200 steps in "fast", 300 epochs in "paper"); ``preprocess`` "sphere" or "none"; ``random_state``
    seeds the shuffling.
    """

    name = "hq"
    label = "HQ"

    def __init__(self, n_bits: int, *, loss: str = "l2", lr: float | None = None, batch_size: int | None = None,
                 epochs: int | None = None, steps: int | None = None, schedule: str = "fast",
                 preprocess: str = "sphere", random_state: int | None = 0) -> None:
        self.n_bits = n_bits
        self.loss = loss
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps = steps
        self.schedule = schedule
        self.preprocess = preprocess
        self.random_state = random_state

    # ------------------------------------------------------------------ state: rotation_ from the v_i
    @property
    def rotation_(self) -> np.ndarray:
        R = self.__dict__.get("_rotation")
        if R is None:
            V = self.__dict__.get("_V")
            if V is None:
                raise NotFittedError(f"this {type(self).__name__} is not fitted yet",
                                     "call fit(X) (or consume fit_steps(X)) first")
            R = householder_rotation(V.detach().cpu().numpy())
            self._rotation = R
        return R

    @rotation_.setter
    def rotation_(self, R) -> None:        # set_rotation: a saved rotation without its reflection vectors
        self._rotation = np.asarray(R, dtype=np.float64)
        self._V = None

    @property
    def householder_vectors_(self) -> np.ndarray:
        """The v_i as columns (float64 copy); R = H_1 ... H_n."""
        V = self.__dict__.get("_V")
        if V is None:
            raise NotFittedError("no Householder vectors: the quantizer is not fitted (or was set from a rotation)",
                                 "call fit(X)")
        return V.detach().cpu().numpy().astype(np.float64)

    def _reset(self) -> None:
        super()._reset()
        self._V = None
        self._rotation = None

    # ------------------------------------------------------------------ options
    def _resolve(self, n: int) -> dict:
        check_choice(self.loss, "HQ loss", LOSS_NAMES, hint=f"valid losses: {', '.join(LOSS_NAMES)}")
        check_choice(self.schedule, "HQ schedule", SCHEDULES,
                     hint=f"valid schedules: {', '.join(SCHEDULES)} ('paper' = the authors' SGD runs)")
        batch = check_int(self.batch_size, "batch_size", lo=0, none=True, hint="rows per optimiser step, e.g. 128")
        epochs = check_int(self.epochs, "epochs", lo=0, none=True, hint="passes over the training rows")
        steps = check_int(self.steps, "steps", lo=0, none=True, hint="optimiser updates")
        if batch == 0:
            raise InvalidInputError("batch_size must be at least 1", "leave it None for the schedule's default")
        if epochs is not None and steps is not None:
            raise InvalidInputError(f"give epochs or steps, not both (got epochs={epochs}, steps={steps})",
                                    "steps counts optimiser updates, epochs passes over the data")
        lr = self.lr
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf):
            raise InvalidInputError(f"lr must be a positive number, got {lr!r}", "leave it None for the default")
        paper = self.schedule == "paper"
        if paper:
            batch = batch or PAPER_BATCH
            lr = lr or (PAPER_LR_BIT_VAR if self.loss == "bit_var" else PAPER_LR)
        else:
            batch = batch or FAST_MAX_BATCH
            lr = lr or FAST_LR
        batch = min(batch, n)
        per_epoch = math.ceil(n / batch)
        if steps is None:
            steps = epochs * per_epoch if epochs is not None else (PAPER_EPOCHS * per_epoch if paper else FAST_STEPS)
        return {"paper": paper, "batch": batch, "lr": float(lr), "steps": steps, "per_epoch": per_epoch}

    # ------------------------------------------------------------------ fitting
    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:
        import torch

        cfg = self._resolve(X.shape[0])
        d = X.shape[1]
        self._V = torch.eye(d, dtype=torch.float32)          # v_i = e_i  ->  R = -I
        self._rotation = None
        self.n_steps_ = 0
        self.schedule_ = {"optimizer": "sgd" if cfg["paper"] else "adam",
                          **{k: cfg[k] for k in ("batch", "lr", "steps")}}
        return self._iterate(torch.from_numpy(X), cfg)

    def _iterate(self, X, cfg: dict) -> Iterator[FitStep]:

        from hashviz.quantize.objectives import torch_threads

        with torch_threads():        # kept for the generator's lifetime: switching costs ~ms per call
            yield from self._loop(X, cfg)

    def _loop(self, X, cfg: dict) -> Iterator[FitStep]:
        import torch

        from hashviz.quantize.objectives import (
            LOSSES,
            householder_forward,
            householder_vjp,
            l2_full_batch,
            loss_and_grad,
            smoothed_l2_grad,
        )

        n, d = X.shape
        sphere = self.preprocess == "sphere"
        batch, total, lr0, paper = cfg["batch"], cfg["steps"], cfg["lr"], cfg["paper"]
        full = batch >= n
        shortcut = full and self.loss == "l2"
        smooth = not paper and self.loss == "l2"
        rms = math.sqrt(float(np.square(X.numpy(), dtype=np.float64).mean()))       # 1 for sphere rows
        tau0, tau1 = FAST_TAU

        def tau(k: int) -> float:
            if not smooth:
                return 0.0
            return rms * tau0 * (tau1 / tau0) ** ((k - 1) / max(1, total - 1))
        if shortcut:
            XtX = X.T @ X
            sq_norm = float(np.square(X.numpy(), dtype=np.float64).sum())
        gen = torch.Generator().manual_seed(int(self.random_state or 0) % (2**63))
        m = torch.zeros(d, d)
        v2 = torch.zeros(d, d)
        beta1, beta2, eps = 0.9, 0.999, 1e-8

        def batches():
            while True:
                if full:
                    yield X
                    continue
                Xp = X[torch.randperm(n, generator=gen)]        # one shuffled copy per epoch, then views
                for s in range(0, n, batch):
                    yield Xp[s:s + batch]

        def record(step: int, Z, loss_value: float, rows_seen: int, lr: float) -> FitStep:
            terms = {"lr": lr, "tau": tau(step)} if smooth else {"lr": lr}
            if sphere and self.loss == "l2":
                qe = loss_value
            elif Z is None:
                return record(step, X @ householder_forward(self._V)[0], loss_value, rows_seen, lr)
            elif sphere:
                qe = float((Z.abs() - 1).square().mean())
            else:
                U = Z * (math.sqrt(d) / Z.norm(dim=1, keepdim=True).clamp_min(1e-30))
                qe = float((U.abs() - 1).square().mean())
            self.n_steps_ = step
            self.loss_, self.quantization_error_ = loss_value, qe
            return FitStep(step=step, epoch=rows_seen / n, loss=loss_value, quantization_error=qe, terms=terms)

        stream = batches()
        rows_seen = 0
        lr_prev = lr0
        for k in range(1, total + 1):
            Xb = next(stream)
            R, cache = householder_forward(self._V)
            if shortcut:
                L, G_R = l2_full_batch(R, X, XtX, sq_norm, tau=tau(k))
                Z = None
            else:
                Z = Xb @ R
                L, G_Z = loss_and_grad(self.loss, Z)
                if smooth:
                    G_Z = smoothed_l2_grad(Z, tau(k))
                G_R = Xb.T @ G_Z
            if k > 1:                       # loss of R_{k-1} on this batch: report it before updating
                yield record(k - 1, Z, float(L), rows_seen, lr_prev)
            g = householder_vjp(self._V, cache, G_R)
            if paper:                       # plain SGD, constant lr, no momentum
                lr = lr0
                self._V = self._V - lr * g
            else:                           # Adam, constant lr (the annealed smoothing does the settling)
                lr = lr0
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                step = lr / (1 - beta1 ** k)
                self._V = self._V - step * m / ((v2 / (1 - beta2 ** k)).sqrt() + eps)
            self._rotation = None
            rows_seen += Xb.shape[0]
            lr_prev = lr
        if total >= 1:
            Z = X @ householder_forward(self._V)[0]
            yield record(total, Z, float(LOSSES[self.loss](Z)), rows_seen, lr_prev)
