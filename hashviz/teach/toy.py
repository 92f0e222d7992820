"""The rotation playground's toy: a few Gaussian clusters in 2-D or 3-D, where n_bits = 2 or 3 and the embedding
space *is* the picture.

Data. Class c's centre is a corner of the hypercube (±1)ⁿ, turned away from the sign-aligned position by a
planted rotation of ``offset`` degrees (in 2-D a turn in the plane; in 3-D a turn about the fixed axis
(1, 2, 3)/√14); points are centre + ``spread`` · N(0, I), drawn by a generator seeded with ``seed``. A share of
each class is the query split, the rest the database, and the quantizers fit on the database (train = database,
the deep-hashing protocol of the library, without labels except random search).

Definitions are the library's own: a rotation acts on row vectors (``U = X @ R``, as in
:meth:`hashviz.quantize.base.BaseQuantizer.transform`), codes are ``U >= 0`` (:func:`hashviz.codes.to_bits`), the
quantization error is :func:`hashviz.quantize.base.quantization_error` (rows rescaled to norm √n_bits, then
the mean of (|u| − 1)²) on the training rows, and mAP is
:func:`hashviz.retrieval.metrics.mean_average_precision` of the queries against the database (ties expected,
with the optimistic and pessimistic orders beside it). The learned rotations come from the real quantizers
(:func:`hashviz.quantize.make_quantizer`).

Symmetries (why the searches below cover what they claim): flipping the sign of one coordinate of every row
flips one bit of every code and permuting coordinates permutes bits — neither changes any Hamming distance or
any |u|, so quantization error and mAP are the same for R and for R·S with S a signed permutation. In 2-D the
proper rotations (det +1) are R(θ), θ ∈ [0°, 360°), and the error repeats every 90°; a reflection (det −1) is
R(θ)·diag(1, −1), so it has exactly the error and mAP of R(θ): the 1° grid over θ covers every orthogonal 2×2
matrix at 1° resolution. HQ's R = H₁H₂ in 2-D is a product of two reflections, a proper rotation (its start
−I is R(180°)); in 3-D, H₁H₂H₃ has det −1 and −R (same codes with every bit flipped) is proper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.quantize.base import sphere_rows
from hashviz.retrieval.metrics import quantization_error
from hashviz.validate import check_int

#: quantizers the playground learns, by registry name
LEARNERS = ("hq", "itq", "random")
#: the axis the 3-D toy's planted rotation turns about
AXIS_3D = np.array([1.0, 2.0, 3.0]) / math.sqrt(14.0)
#: hypercube corners in the order classes take them (far apart first: a square's diagonal, a tetrahedron)
CORNERS = {
    2: np.array([[1, 1], [-1, -1], [-1, 1], [1, -1]], dtype=np.float64),
    3: np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1],
                 [-1, -1, -1], [-1, 1, 1], [1, -1, 1], [1, 1, -1]], dtype=np.float64),
}
QUERY, DATABASE = 1, 2  # split codes, as in hashviz.embeddings


# ------------------------------------------------------------------------------------------------ rotations
def rotation_2d(theta: float) -> np.ndarray:
    """R(θ) for row vectors: ``X @ rotation_2d(θ)`` turns every point counter-clockwise by θ degrees."""
    t = math.radians(float(theta))
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s], [-s, c]])


def rotation_3d(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """A proper 3-D rotation for row vectors from three angles in degrees: ``X @ R`` turns points by
    Rz(yaw) · Ry(pitch) · Rx(roll) (about x by ``roll`` first, then y by ``pitch``, then z by ``yaw``)."""
    a, b, c = (math.radians(float(v)) for v in (yaw, pitch, roll))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[1, 0, 0], [0, math.cos(c), -math.sin(c)], [0, math.sin(c), math.cos(c)]])
    return (rz @ ry @ rx).T


def rotations_3d(angles: np.ndarray) -> np.ndarray:
    """:func:`rotation_3d` of every row (yaw, pitch, roll) of ``angles`` (m, 3), stacked (m, 3, 3)."""
    a, b, c = np.radians(np.asarray(angles, dtype=np.float64)).T
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    M = np.empty((len(a), 3, 3))               # Rz(a) Ry(b) Rx(c), multiplied out
    M[:, 0] = np.stack([ca * cb, ca * sb * sc - sa * cc, ca * sb * cc + sa * sc], axis=1)
    M[:, 1] = np.stack([sa * cb, sa * sb * sc + ca * cc, sa * sb * cc - ca * sc], axis=1)
    M[:, 2] = np.stack([-sb, cb * sc, cb * cc], axis=1)
    return M.transpose(0, 2, 1)


def axis_rotation(axis, theta: float) -> np.ndarray:
    """Rotation by θ degrees about ``axis`` (Rodrigues), for row vectors."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    t = math.radians(float(theta))
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return (np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K).T


def proper(R: np.ndarray) -> tuple[np.ndarray, bool]:
    """(a proper rotation with the same quantization error and mAP as R, whether R was a reflection).

    det R = −1: in 2-D R·diag(1, −1) (one bit flipped for every point), in 3-D −R (every bit flipped)."""
    R = np.asarray(R, dtype=np.float64)
    if np.linalg.det(R) > 0:
        return R, False
    if R.shape[0] == 2:
        return R @ np.diag([1.0, -1.0]), True
    return -R, True


def angle_2d(R: np.ndarray) -> float:
    """θ in degrees, [−180°, 180°), of the proper 2-D rotation :func:`proper` gives for ``R``."""
    P, _ = proper(R)
    return _wrap(math.degrees(math.atan2(P[0, 1], P[0, 0])), 180.0)


def euler_3d(R: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees with ``rotation_3d(yaw, pitch, roll)`` = :func:`proper`'s rotation of R."""
    P, _ = proper(R)
    M = P.T
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -M[2, 0]))))
    if abs(M[2, 0]) < 1 - 1e-9:
        yaw = math.degrees(math.atan2(M[1, 0], M[0, 0]))
        roll = math.degrees(math.atan2(M[2, 1], M[2, 2]))
    else:                                   # gimbal lock: yaw and roll turn about the same axis
        yaw, roll = math.degrees(math.atan2(-M[0, 1], M[1, 1])), 0.0
    return yaw, pitch, roll


def _wrap(theta: float, half: float) -> float:
    """θ moved into [−half, half)."""
    return (theta + half) % (2 * half) - half


def symmetric_angle(theta: float) -> float:
    """θ modulo 90° in [−45°, 45°): 2-D rotations this far apart give the same error and mAP (see the module
    docstring)."""
    return _wrap(theta, 45.0)


# ------------------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class ToySpec:
    """The toy's settings (hashable: a cache key). ``offset``: degrees the clusters are turned away from the
    sign-aligned corners; ``spread``: the standard deviation of each cluster; ``query_share``: share of each class
    in the query split."""

    n_bits: int = 2
    n_classes: int = 4
    spread: float = 0.3
    offset: float = 30.0
    n_per_class: int = 60
    query_share: float = 0.2
    seed: int = 0

    def check(self) -> ToySpec:
        if self.n_bits not in (2, 3):
            raise InvalidInputError(f"the toy has 2 or 3 bits, got n_bits={self.n_bits!r}",
                                    "use n_bits=2 (a plane) or 3 (space)")
        top = 2 ** self.n_bits
        check_int(self.n_classes, f"n_classes of the {self.n_bits}-bit toy (one class per corner)", lo=2, hi=top,
                  hint=f"choose between 2 and {top} classes")
        if not (isinstance(self.spread, int | float) and 0 <= self.spread <= 3):
            raise InvalidInputError(f"spread must be a number from 0 to 3, got {self.spread!r}",
                                    "0.3 gives clusters that overlap a little")
        if not (isinstance(self.offset, int | float) and math.isfinite(self.offset)):
            raise InvalidInputError(f"offset must be an angle in degrees, got {self.offset!r}", "e.g. 30")
        check_int(self.n_per_class, "n_per_class", lo=5, hi=2000,
                  hint="a few dozen points per class keep the picture readable")
        if not (isinstance(self.query_share, int | float) and 0 < self.query_share < 1):
            raise InvalidInputError(f"query_share must be between 0 and 1, got {self.query_share!r}", "e.g. 0.2")
        return self


@dataclass(frozen=True)
class Toy:
    """The toy's points ``X`` (n, n_bits), ``labels`` (n,), ``split`` (1 query, 2 database), class centres and
    the planted rotation (``centres = corners @ planted``)."""

    spec: ToySpec
    X: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    centres: np.ndarray
    planted: np.ndarray

    @property
    def n_bits(self) -> int:
        return self.spec.n_bits

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def query(self) -> np.ndarray:
        return np.flatnonzero(self.split == QUERY)

    @property
    def database(self) -> np.ndarray:
        return np.flatnonzero(self.split == DATABASE)

    @property
    def train(self) -> np.ndarray:
        """The rows quantizers fit on and the quantization error is measured on: the database."""
        return self.database

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(f"class {c}" for c in range(self.spec.n_classes))


def planted_rotation(n_bits: int, offset: float) -> np.ndarray:
    return rotation_2d(offset) if n_bits == 2 else axis_rotation(AXIS_3D, offset)


def make_toy(spec: ToySpec) -> Toy:
    """The seeded toy of ``spec`` (see the module docstring)."""
    spec.check()
    rng = np.random.default_rng(spec.seed)
    planted = planted_rotation(spec.n_bits, spec.offset)
    centres = CORNERS[spec.n_bits][: spec.n_classes] @ planted
    m = spec.n_per_class
    labels = np.repeat(np.arange(spec.n_classes), m)
    X = centres[labels] + spec.spread * rng.standard_normal((len(labels), spec.n_bits))
    n_query = max(1, min(m - 1, round(spec.query_share * m)))
    split = np.full(len(labels), DATABASE, np.uint8)
    for c in range(spec.n_classes):
        split[c * m + rng.choice(m, n_query, replace=False)] = QUERY
    return Toy(spec=spec, X=X.astype(np.float32), labels=labels.astype(np.int64), split=split, centres=centres,
               planted=planted)


# ---------------------------------------------------------------------------------------------------- scores
def code_strings(bits: np.ndarray) -> list[str]:
    """"10"-style code of each row of bool ``bits`` (bit i = 1 where coordinate i ≥ 0)."""
    return ["".join("1" if b else "0" for b in row) for row in np.asarray(bits, dtype=bool)]


@dataclass(frozen=True)
class ToyScore:
    """The toy under one rotation: rotated points, codes, the error and mAP (three tie orders), corner counts."""

    rotation: np.ndarray
    U: np.ndarray                 # X @ R (n, n_bits), not rescaled
    bits: np.ndarray              # U >= 0
    quantization_error: float     # on the training rows
    map: float                    # queries vs database, ties expected
    map_optimistic: float
    map_pessimistic: float
    corner_counts: dict = field(default_factory=dict)   # code string -> number of points (every corner listed)

    @property
    def codes(self) -> list[str]:
        return code_strings(self.bits)


def toy_map(toy: Toy, R: np.ndarray, ties: str = "expected") -> float:
    """mAP@all of the toy's queries against its database with codes of ``X @ R``."""
    from hashviz.codes import encode
    from hashviz.retrieval.metrics import mean_average_precision

    codes = encode(toy.X @ np.asarray(R, dtype=np.float32))
    return float(mean_average_precision(codes[toy.query], codes[toy.database], toy.labels[toy.query],
                                        toy.labels[toy.database], ties=ties))


def toy_error(toy: Toy, R: np.ndarray) -> float:
    """The library's quantization error of the training rows under ``R``."""
    return quantization_error(toy.X[toy.train].astype(np.float64) @ np.asarray(R, dtype=np.float64))


def score(toy: Toy, R: np.ndarray) -> ToyScore:
    """Everything the playground shows for rotation ``R``."""
    R = np.asarray(R, dtype=np.float64)
    U = toy.X.astype(np.float64) @ R
    bits = U >= 0
    counts = dict.fromkeys(code_strings(np.array(_all_corners(toy.n_bits)) >= 0), 0)
    for code in code_strings(bits):
        counts[code] += 1
    return ToyScore(rotation=R, U=U, bits=bits, quantization_error=toy_error(toy, R), map=toy_map(toy, R),
                    map_optimistic=toy_map(toy, R, "optimistic"), map_pessimistic=toy_map(toy, R, "pessimistic"),
                    corner_counts=counts)


def _all_corners(n_bits: int) -> list[tuple[int, ...]]:
    """Every corner of (±1)ⁿ, ordered by its code read as a binary number (00, 01, 10, 11 …)."""
    out = []
    for k in range(2 ** n_bits):
        out.append(tuple(1 if (k >> (n_bits - 1 - i)) & 1 else -1 for i in range(n_bits)))
    return out


def all_corners(n_bits: int) -> np.ndarray:
    return np.array(_all_corners(n_bits), dtype=np.float64)


# ------------------------------------------------------------------------------------------------ grid search
@dataclass(frozen=True)
class Grid:
    """A search over rotations: ``angles`` (m,) in 2-D or (m, 3) Euler angles in 3-D, ``errors`` (m,), ``maps``
    (m,) in 2-D (None in 3-D), and the best (lowest-error; the first one on a tie) angle and error."""

    step: float
    angles: np.ndarray
    errors: np.ndarray
    maps: np.ndarray | None
    best_angle: float | tuple[float, float, float]
    best_error: float

    @property
    def best_rotation(self) -> np.ndarray:
        return rotation_2d(self.best_angle) if np.ndim(self.best_angle) == 0 else rotation_3d(*self.best_angle)


def _errors(Xs: np.ndarray, rotations: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Quantization error of sphere rows ``Xs`` under each rotation of ``rotations`` (m, n, n): a rotation keeps
    row norms, so rows are rescaled once and the error is the mean of (|u| − 1)² over entries."""
    out = np.empty(len(rotations))
    for s in range(0, len(rotations), chunk):
        U = np.matmul(Xs, rotations[s:s + chunk])
        out[s:s + chunk] = np.square(np.abs(U) - 1.0).mean(axis=(1, 2))
    return out


def grid_search_2d(toy: Toy, step: float = 1.0, *, with_map: bool = True) -> Grid:
    """Every proper rotation R(θ), θ = 0°, step, 2·step, … < 360°: its quantization error (and mAP). Reflections
    need no separate search: R(θ)·diag(1, −1) has the error and mAP of R(θ) (module docstring)."""
    if toy.n_bits != 2:
        raise InvalidInputError("grid_search_2d needs the 2-bit toy", "use grid_search_3d for 3 bits")
    angles = np.arange(0.0, 360.0, float(step))
    rotations = np.stack([rotation_2d(t) for t in angles])
    errors = _errors(sphere_rows(toy.X[toy.train].astype(np.float64)), rotations)
    maps = np.array([toy_map(toy, R) for R in rotations]) if with_map else None
    i = int(np.argmin(errors))
    return Grid(step=float(step), angles=angles, errors=errors, maps=maps, best_angle=float(angles[i]),
                best_error=float(errors[i]))


def grid_search_3d(toy: Toy, step: float = 10.0) -> Grid:
    """Every rotation ``rotation_3d(yaw, pitch, roll)`` on a ``step``-degree grid (yaw, roll ∈ [−180°, 180°),
    pitch ∈ [−90°, 90°]: all of SO(3)); quantization error only. Improper matrices need no search: −R has R's
    error and mAP."""
    if toy.n_bits != 3:
        raise InvalidInputError("grid_search_3d needs the 3-bit toy", "use grid_search_2d for 2 bits")
    s = float(step)
    yaw = np.arange(-180.0, 180.0, s)
    pitch = np.arange(-90.0, 90.0 + s / 2, s)
    grid = np.stack(np.meshgrid(yaw, pitch, yaw, indexing="ij"), axis=-1).reshape(-1, 3)
    rotations = rotations_3d(grid)
    errors = _errors(sphere_rows(toy.X[toy.train].astype(np.float64)), rotations)
    i = int(np.argmin(errors))
    return Grid(step=s, angles=grid, errors=errors, maps=None, best_angle=tuple(float(v) for v in grid[i]),
                best_error=float(errors[i]))


# ---------------------------------------------------------------------------------------------------- learning
@dataclass(frozen=True)
class Learned:
    """One real quantizer fitted on the toy, with its path: ``rotations`` (T + 1, n, n) from its start (HQ: −I)
    to the learned R, ``steps`` (T + 1,), the library's quantization error at every step, mAP at the steps in
    ``map_steps`` (at most ~100 evenly spaced and the last), and for HQ the Householder vectors (columns) at every
    step."""

    name: str
    label: str
    options: dict
    steps: np.ndarray
    rotations: np.ndarray
    errors: np.ndarray
    map_steps: np.ndarray
    maps: np.ndarray
    vectors: np.ndarray | None = None

    @property
    def rotation(self) -> np.ndarray:
        return self.rotations[-1]

    @property
    def error(self) -> float:
        return float(self.errors[-1])

    @property
    def map(self) -> float:
        return float(self.maps[-1])


def learn(toy: Toy, name: str, max_map_points: int = 100, **options) -> Learned:
    """Fit quantizer ``name`` (``make_quantizer(name, n_bits, **options)``) on the toy's training rows, keeping
    the rotation after every step (``rotation_`` is valid after every yield of ``fit_steps``)."""
    from hashviz.quantize import QUANTIZERS, make_quantizer

    if name not in LEARNERS:
        raise InvalidInputError(f"the playground learns {', '.join(LEARNERS)}, not {name!r}",
                                "sign has nothing to learn: it is the identity rotation")
    q = make_quantizer(name, toy.n_bits, **options)
    train = toy.train
    y = toy.labels[train] if QUANTIZERS[name].needs_labels else None
    hq = name == "hq"
    it = q.fit_steps(toy.X[train], y)
    rotations = [np.array(q.rotation_, dtype=np.float64)]
    vectors = [q.householder_vectors_] if hq else None
    steps = [0]
    for st in it:
        steps.append(int(st.step))
        rotations.append(np.array(q.rotation_, dtype=np.float64))
        if hq:
            vectors.append(q.householder_vectors_)
    R = np.stack(rotations)
    errors = _errors(sphere_rows(toy.X[train].astype(np.float64)), R)
    pick = np.unique(np.linspace(0, len(R) - 1, min(len(R), max_map_points)).round().astype(int))
    maps = np.array([toy_map(toy, R[i]) for i in pick])
    return Learned(name=name, label=QUANTIZERS[name].label, options=dict(options), steps=np.array(steps),
                   rotations=R, errors=errors, map_steps=np.array(steps)[pick], maps=maps,
                   vectors=None if vectors is None else np.stack(vectors))


def mirror_directions(vectors: np.ndarray) -> np.ndarray:
    """Unit normals of the Householder mirrors (columns of ``vectors`` normalised): reflection H_i maps x to
    x − 2 (x·v̂_i) v̂_i, i.e. mirrors across the line (2-D) or plane (3-D) through 0 orthogonal to v̂_i."""
    V = np.asarray(vectors, dtype=np.float64)
    return V / np.linalg.norm(V, axis=0, keepdims=True)


def thin_steps(n: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spaced indices into ``range(n)``, always the first and the last."""
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))
