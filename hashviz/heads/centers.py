"""Hash centres (class targets in {-1, +1}^n_bits) for centre-based hashing heads.

Used by OrthoHash (its "codebook" of binary orthogonal targets), CSQ and SHC (their hash centres).
Every generator takes a ``numpy.random.Generator`` and is deterministic given it; every one returns an
``int8`` array (n_classes, n_bits) of ±1.

- :func:`bernoulli_centers` — each bit ±1 with probability 1/2 (OrthoHash's default codebook "B").
- :func:`hadamard_centers` — CSQ (Yuan et al., CVPR 2020): rows of a Sylvester Hadamard matrix H and of −H
  (any two distinct rows of H are exactly n_bits/2 apart); when there are more classes than the 2·n_bits rows
  of [H; −H], or n_bits is not a power of two (Sylvester matrices exist only for powers of two), the missing
  rows are drawn by :func:`random_balanced_centers` with a minimum-distance check against all rows so far.
- :func:`random_balanced_centers` — rows with n_bits/2 ones (⌊·⌋ or ⌈·⌉ for odd n_bits), drawn one at a time
  and kept only if at least ``min_distance`` bits away from every row kept so far (CSQ's fallback). When the
  requested distance cannot be reached (e.g. 100 classes in 8 bits) it is lowered one bit at a time; the
  distance reached is :func:`min_pairwise_distance` of the result.
- :func:`max_distance_centers` — start from random balanced rows and flip single bits while that lowers a soft-min
  energy Σ_{i<j} exp(κ·⟨c_i, c_j⟩ / n_bits) without lowering the minimum pairwise Hamming distance
  (OrthoHash's "optimised" codebook spirit: spread the targets as far apart as possible).
- :func:`multilabel_centers` — the centre of a multi-label item: sign of the sum of its labels' centres
  (CSQ), zeros broken by a fixed random ±1 vector.
- :func:`similarity_centers` — SHC's stage 2: centres whose (1/n_bits)·C Cᵀ approaches a class similarity while
  every pair stays at least a minimum Hamming distance apart.
- :func:`rng_from_generator` — the numpy Generator the losses draw centres from (one draw of the trainer's
  ``torch.Generator``).
"""

from __future__ import annotations

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.validate import unknown_choice


def _check(n_classes: int, n_bits: int) -> None:
    if int(n_classes) < 1:
        raise InvalidInputError(f"n_classes must be >= 1, got {n_classes}", "the training labels have no class")
    if int(n_bits) < 2:
        raise InvalidInputError(f"n_bits must be >= 2, got {n_bits}", "choose a bit length between 8 and 128")
    if n_classes > 2 ** min(int(n_bits), 62):
        raise InvalidInputError(f"{n_classes} classes cannot have distinct centres in {n_bits} bits",
                                "use more bits")


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def hadamard_matrix(n: int) -> np.ndarray:
    """Sylvester Hadamard matrix of order ``n`` (a power of two), int8 ±1, H Hᵀ = n I."""
    if not is_power_of_two(n):
        raise InvalidInputError(f"a Sylvester Hadamard matrix needs a power-of-two order, got {n}",
                                "use 8, 16, 32, 64 or 128 bits, or random balanced centres")
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]]).astype(np.int8)
    return h


def pairwise_hamming(centers) -> np.ndarray:
    """Hamming distances (c, c) between ±1 rows."""
    c = np.asarray(centers, dtype=np.int64)
    return (c.shape[1] - c @ c.T) // 2


def min_pairwise_distance(centers) -> int:
    """Smallest Hamming distance between two distinct rows (n_bits when there is a single row)."""
    c = np.asarray(centers)
    if len(c) < 2:
        return int(c.shape[1])
    d = pairwise_hamming(c)
    return int(d[np.triu_indices(len(c), 1)].min())


def bernoulli_centers(n_classes: int, n_bits: int, *, rng: np.random.Generator) -> np.ndarray:
    """Each bit ±1 with probability 1/2, rows distinct (redrawn on a collision)."""
    _check(n_classes, n_bits)
    out = np.where(rng.random((n_classes, n_bits)) < 0.5, 1, -1).astype(np.int8)
    for _ in range(1000):
        _, first = np.unique(out, axis=0, return_index=True)
        dup = np.setdiff1d(np.arange(n_classes), first)
        if dup.size == 0:
            break
        out[dup] = np.where(rng.random((dup.size, n_bits)) < 0.5, 1, -1)
    return out


def _balanced_rows(m: int, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` random rows with n_bits // 2 or (n_bits + 1) // 2 entries +1."""
    n_pos = np.full(m, n_bits // 2)
    if n_bits % 2:
        n_pos += rng.integers(0, 2, size=m)
    order = np.argsort(rng.random((m, n_bits)), axis=1)
    rows = -np.ones((m, n_bits), dtype=np.int8)
    np.put_along_axis(rows, order, np.where(np.arange(n_bits)[None, :] < n_pos[:, None], 1, -1).astype(np.int8),
                      axis=1)
    return rows


def random_balanced_centers(n_classes: int, n_bits: int, *, rng: np.random.Generator,
                            min_distance: int | None = None, fixed=None, tries: int = 2000) -> np.ndarray:
    """``n_classes`` rows: the rows of ``fixed`` (kept as they are) then balanced random rows, each at least
    ``min_distance`` bits from all earlier rows (default: more than n_bits/4, CSQ's acceptance test).

    Rows are drawn in blocks of candidates; if ``tries`` balanced candidates fail for one row, unbalanced
    (Bernoulli) candidates are mixed in from then on (e.g. no balanced 16-bit row is 5 bits from all 32 rows of
    [H; −H], but bent functions are 6 away); if those fail too, the distance is lowered by one and the search goes
    on, so the call always returns.
    """
    _check(n_classes, n_bits)
    want = n_bits // 4 + 1 if min_distance is None else int(min_distance)
    want = max(1, min(want, n_bits))
    rows = [] if fixed is None else [np.asarray(r, dtype=np.int8) for r in np.asarray(fixed)]
    kept = np.array(rows, dtype=np.int64).reshape(len(rows), n_bits)
    block = 256
    mixed = False
    while len(rows) < n_classes:
        found = False
        for _ in range(max(1, tries // block)):
            cand = _balanced_rows(block, n_bits, rng)
            if mixed or want <= 1:  # no balanced row fits: try Bernoulli rows too
                cand[block // 2:] = np.where(rng.random((block - block // 2, n_bits)) < 0.5, 1, -1)
            if len(kept):
                d = (n_bits - cand.astype(np.int64) @ kept.T) // 2
                ok = np.flatnonzero(d.min(axis=1) >= want)
            else:
                ok = np.arange(block)
            if ok.size:
                r = cand[ok[0]]
                rows.append(r)
                kept = np.vstack([kept, r[None, :].astype(np.int64)])
                found = True
                break
        if not found:
            if not mixed:
                mixed = True
                continue
            if want <= 1:
                raise InvalidInputError(f"could not draw {n_classes} distinct centres in {n_bits} bits",
                                        "use more bits")
            want -= 1
    return np.array(rows[:n_classes], dtype=np.int8)


def hadamard_centers(n_classes: int, n_bits: int, *, rng: np.random.Generator,
                     min_distance: int | None = None) -> np.ndarray:
    """CSQ's centres: the first rows of [H; −H] (H Sylvester of order n_bits), completed by random balanced
    rows with a minimum-distance check when n_classes > 2·n_bits or n_bits is not a power of two."""
    _check(n_classes, n_bits)
    if not is_power_of_two(n_bits):
        return random_balanced_centers(n_classes, n_bits, rng=rng, min_distance=min_distance)
    h = hadamard_matrix(n_bits)
    h2 = np.concatenate([h, -h], axis=0)
    if n_classes <= len(h2):
        return h2[:n_classes].copy()
    return random_balanced_centers(n_classes, n_bits, rng=rng, min_distance=min_distance, fixed=h2)


def max_distance_centers(n_classes: int, n_bits: int, *, rng: np.random.Generator, kappa: float = 8.0,
                         max_sweeps: int = 50, init=None) -> np.ndarray:
    """Random balanced rows (or ``init``) improved by single-bit flips that lower E = Σ_{i<j} exp(κ G_ij / n_bits),
    G = C Cᵀ, and never lower the minimum pairwise Hamming distance. Stops when no flip helps."""
    _check(n_classes, n_bits)
    c = (random_balanced_centers(n_classes, n_bits, rng=rng) if init is None else np.array(init, dtype=np.int8))
    c = c.astype(np.int64)
    if n_classes < 2:
        return c.astype(np.int8)
    g = c @ c.T
    k = float(n_bits)
    off = ~np.eye(n_classes, dtype=bool)
    for _ in range(max_sweeps):
        improved = False
        cur_min = (n_bits - g[off].max()) // 2
        for i in rng.permutation(n_classes):
            others = np.flatnonzero(off[i])
            gi = g[i, others].astype(float)  # (c-1,)
            # flipping bit b of row i: G_ij -> G_ij - 2 c_ib c_jb
            new = gi[None, :] - 2.0 * (c[i][:, None] * c[others].T)  # (n_bits, c-1)
            delta = np.exp(kappa * new / k).sum(axis=1) - np.exp(kappa * gi / k).sum()
            new_min = (n_bits - new.max(axis=1)) // 2
            delta[new_min < cur_min] = np.inf
            b = int(np.argmin(delta))
            if delta[b] < -1e-12:
                c[i, b] = -c[i, b]
                g[i, others] = new[b].astype(np.int64)
                g[others, i] = g[i, others]
                improved = True
                cur_min = (n_bits - g[off].max()) // 2
        if not improved:
            break
    return c.astype(np.int8)


def make_centers(method: str, n_classes: int, n_bits: int, *, rng: np.random.Generator, **kwargs) -> np.ndarray:
    """Centres by name: ``"bernoulli"``, ``"hadamard"``, ``"max_distance"`` or ``"random_balanced"``."""
    makers = {"bernoulli": bernoulli_centers, "hadamard": hadamard_centers,
              "max_distance": max_distance_centers, "random_balanced": random_balanced_centers}
    aliases = {"b": "bernoulli", "h": "hadamard", "o": "max_distance", "maxdist": "max_distance",
               "max_hamming": "max_distance", "balanced": "random_balanced"}
    key = aliases.get(str(method).lower(), str(method).lower())
    if key not in makers:
        raise unknown_choice(method, "centre generator", makers)
    return makers[key](n_classes, n_bits, rng=rng, **kwargs)


def multilabel_centers(y, centers, tie_breaker) -> np.ndarray:
    """Centre of each item: sign(y @ centers) (CSQ's multi-label centre); entries where the sum is 0 take the
    value of ``tie_breaker`` (a fixed ±1 vector). Works on numpy arrays and torch tensors alike."""
    s = y @ centers
    return np.where(s > 0, 1.0, np.where(s < 0, -1.0, tie_breaker)) if isinstance(s, np.ndarray) else \
        _torch_sign_with_ties(s, tie_breaker)


def _torch_sign_with_ties(s, tie_breaker):
    import torch

    t = torch.as_tensor(tie_breaker, dtype=s.dtype, device=s.device).expand_as(s)
    return torch.where(s > 0, torch.ones_like(s), torch.where(s < 0, -torch.ones_like(s), t))


def rng_from_generator(generator=None, seed: int = 0) -> np.random.Generator:
    """A numpy Generator drawn from a ``torch.Generator`` (one draw), or seeded by ``seed`` when there is none."""
    if generator is None:
        return np.random.default_rng(seed)
    import torch

    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))


def similarity_centers(similarity, n_bits: int, *, rng: np.random.Generator, min_distance: int | None = None,
                       init=None, max_sweeps: int = 100) -> np.ndarray:
    """Centres whose scaled Gram matrix (1/n_bits)·C Cᵀ approaches a target class similarity (SHC's stage 2).

    Minimises Σ_{i≠j} ((1/n_bits)⟨c_i, c_j⟩ − S_ij)², S = (similarity + similarityᵀ)/2, by single-bit flips
    (for each centre in turn the best improving flip), subject to every pair staying at least ``min_distance``
    bits apart. Starts from :func:`hadamard_centers` (or ``init``), which meets the constraint; when the start is
    closer than ``min_distance`` the constraint becomes the start's own minimum distance.
    """
    s = np.asarray(similarity, dtype=float)
    c_n = s.shape[0]
    if s.ndim != 2 or s.shape[1] != c_n:
        raise InvalidInputError(f"similarity must be square (c, c), got {s.shape}", "one row per class")
    s = (s + s.T) / 2.0
    want = n_bits // 4 + 1 if min_distance is None else int(min_distance)
    c = (hadamard_centers(c_n, n_bits, rng=rng, min_distance=want) if init is None
         else np.array(init, dtype=np.int8)).astype(np.int64)
    if c_n < 2:
        return c.astype(np.int8)
    bound = min(want, min_pairwise_distance(c))
    k = float(n_bits)
    g = c @ c.T
    off = ~np.eye(c_n, dtype=bool)
    for _ in range(max_sweeps):
        improved = False
        for i in rng.permutation(c_n):
            others = np.flatnonzero(off[i])
            gi = g[i, others].astype(float)
            new = gi[None, :] - 2.0 * (c[i][:, None] * c[others].T)  # (n_bits, c-1)
            target = s[i, others][None, :]
            delta = ((new / k - target) ** 2).sum(axis=1) - ((gi / k - s[i, others]) ** 2).sum()
            delta[(n_bits - new.max(axis=1)) // 2 < bound] = np.inf
            b = int(np.argmin(delta))
            if delta[b] < -1e-12:
                c[i, b] = -c[i, b]
                g[i, others] = new[b].astype(np.int64)
                g[others, i] = g[i, others]
                improved = True
        if not improved:
            break
    return c.astype(np.int8)


def nearest_center_accuracy(z, labels, centers) -> float:
    """Share of rows whose nearest centre in Hamming distance (of ``sign(z)``, 0 counted as +1) is one of their
    classes — OrthoHash's "codebook accuracy", defined the same way for any centre-based head. Ties between
    equally near centres go to the lowest class index. ``labels``: (n,) class ids or (n, c) multi-hot."""
    z = np.asarray(z, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    if z.ndim != 2 or c.ndim != 2 or z.shape[1] != c.shape[1]:
        raise InvalidInputError(f"embeddings {z.shape} and centres {c.shape} do not match",
                                "give (n, K) embeddings and (classes, K) centres of the same K")
    if z.shape[0] == 0:
        return float("nan")
    b = np.where(z >= 0, 1.0, -1.0)
    nearest = np.argmax(b @ c.T, axis=1)  # max inner product = min Hamming distance; first max on ties
    y = np.asarray(labels)
    if y.ndim == 1:
        return float(np.mean(nearest == y))
    return float(np.mean(y[np.arange(len(y)), nearest] > 0))
