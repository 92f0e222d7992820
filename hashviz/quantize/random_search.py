"""Random-search rotation. Pidhorskyi, Jones, Bhatt, Cutler, Adjeroh, Doretto, "Deep Supervised Hashing with
Spherical Embedding", ACCV 2018.

A greedy search that maximises retrieval quality directly (the one quantizer that uses labels, by design):
start at R = I; at step i (0-based) of ``steps`` draw a Haar-random orthonormal basis Q (QR of a Gaussian, sign
fixed) and a random sign, propose

    R' = R Q^T G(+-s_i) Q,   s_i = (steps - i) / steps   (radians, shrinking linearly from 1 to 1/steps)

with G(theta) the Givens rotation by theta in the first two coordinates — a rotation by s_i in the random plane
spanned by Q's first two rows — and keep R' only if the mAP (``ties="expected"``, mAP@all) of a labelled query
subset against a database subset of the training rows rises (strictly). Subsets: at most ``n_queries`` queries
and ``n_database`` database rows, disjoint, drawn by the seeded generator; with fewer training rows they are
split 1 : 8. Labels are ints (n,) or multi-hot (n, c) (relevant = share a label).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hashviz.codes import encode as _encode
from hashviz.quantize.base import BaseQuantizer, FitStep, random_orthogonal
from hashviz.retrieval.metrics import quantization_error
from hashviz.validate import check_int


class RandomSearchQuantizer(BaseQuantizer):
    """Greedy random Givens rotations kept when the training-subset mAP rises. ``fit(X, y)`` needs labels.

    ``fit_steps`` yields one :class:`FitStep` per proposal: ``loss`` = -mAP of the current (kept) rotation,
    ``terms`` = ``{"map": mAP of the current rotation, "accepted": 1.0 or 0.0, "proposal_map": mAP of the
    proposal, "angle": s_i}``; ``quantization_error`` is that of the current rotation on the search subset.
    """

    name = "random"
    label = "random search"
    needs_labels = True

    def __init__(self, n_bits: int, *, steps: int = 800, n_queries: int = 2000, n_database: int = 16000,
                 random_state: int | None = 0) -> None:
        self.n_bits = n_bits
        self.steps = steps
        self.n_queries = n_queries
        self.n_database = n_database
        self.random_state = random_state

    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:
        for name in ("steps", "n_queries", "n_database"):
            check_int(getattr(self, name), name, lo=0 if name == "steps" else 1,
                      hint="see RandomSearchQuantizer's defaults")
        rng = np.random.default_rng(self.random_state)
        n = X.shape[0]
        if n >= self.n_queries + self.n_database:
            nq, ndb = self.n_queries, self.n_database
        else:
            nq = min(self.n_queries, max(1, round(n / 9)))
            ndb = min(self.n_database, n - nq)
        order = rng.permutation(n)
        qi, di = np.sort(order[:nq]), np.sort(order[nq:nq + ndb])
        Xs = X[np.concatenate([qi, di])]
        labels = np.asarray(y)
        self.search_rows_ = (qi, di)
        self.rotation_ = np.eye(X.shape[1])
        self.map_ = None
        return self._iterate(Xs, nq, labels[qi], labels[di], rng)

    def _iterate(self, Xs, nq, yq, ydb, rng) -> Iterator[FitStep]:
        from hashviz.retrieval.metrics import mean_average_precision

        def score(R: np.ndarray) -> float:
            codes = _encode(Xs @ R.astype(np.float32))
            return float(mean_average_precision(codes[:nq], codes[nq:], yq, ydb, top_k=None, ties="expected"))

        d = Xs.shape[1]
        steps = int(self.steps)
        R = self.rotation_
        current = score(R)
        self.map_ = current
        qe = quantization_error(Xs @ R)
        for i in range(steps):
            Q = random_orthogonal(d, rng)
            angle = (steps - i) / steps * (1.0 if rng.random() < 0.5 else -1.0)
            proposal = R.copy() if d < 2 else R @ self._plane_rotation(Q, angle)
            proposed = score(proposal) if d >= 2 else current
            accepted = proposed > current
            if accepted:
                R, current = proposal, proposed
                self.rotation_, self.map_ = R, current
                qe = quantization_error(Xs @ R)
            self.quantization_error_ = qe
            yield FitStep(step=i + 1, epoch=float(i + 1), loss=-current, quantization_error=qe,
                          terms={"map": current, "accepted": float(accepted), "proposal_map": proposed,
                                 "angle": float(angle)})

    @staticmethod
    def _plane_rotation(Q: np.ndarray, theta: float) -> np.ndarray:
        """Q^T G(theta) Q with G the Givens rotation by theta in coordinates (0, 1): I + Q^T (G - I) Q."""
        c, s = np.cos(theta), np.sin(theta)
        q = Q[:2]                                          # the plane: Q's first two rows
        D = np.array([[c - 1.0, -s], [s, c - 1.0]])        # (G - I) restricted to that plane
        return np.eye(Q.shape[0]) + q.T @ D @ q
