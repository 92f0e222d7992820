"""The quantizer contract: fit a rotation R on continuous embeddings, codes = pack((X - mean_) @ R >= 0).

Every quantizer follows the scikit-learn conventions:

- ``__init__`` only stores its arguments (``n_bits`` first, then keyword options with working defaults);
  validation and seeding happen in :meth:`BaseQuantizer.fit_steps`; learned state ends in ``_``.
- :meth:`fit_steps` validates the input eagerly (errors are raised at the call, not at the first ``next``),
  sets the initial rotation and returns an iterator of :class:`FitStep`, one per update. ``rotation_`` is valid
  (orthogonal, usable by :meth:`transform` / :meth:`encode`) right after ``fit_steps`` returns and after every
  yield, so a consumer may stop early (a Stop button) and keep a working quantizer.
- :meth:`fit` consumes ``fit_steps`` and returns ``self``.
- :meth:`transform` returns ``(X - mean_) @ rotation_`` as float32 — still continuous and *not* rescaled: the
  row rescaling of ``preprocess="sphere"`` multiplies each row by a positive factor, which changes no sign, so
  codes are identical either way, and :func:`hashviz.retrieval.metrics.quantization_error` rescales by itself.
- ``mean_`` is zeros unless the quantizer was asked to centre (only ITQ offers ``center=True``; HQ's paper does
  not centre, and the sign threshold of a hashing head is learned around 0).

Quantization error, one definition everywhere (the HQ authors' plotted metric): the mean over entries of
``(|u| - 1)^2`` with ``u`` the rotated rows rescaled to norm ``sqrt(n_bits)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from hashviz.codes import encode as _encode_codes
from hashviz.errors import InvalidInputError, NotFittedError
from hashviz.retrieval.metrics import quantization_error  # noqa: F401 - the one definition, re-exported here
from hashviz.validate import check_choice, check_int

PREPROCESS = ("sphere", "none")


@dataclass(frozen=True)
class FitStep:
    """One update of a quantizer's fit, describing the state ``rotation_`` has at the moment it is yielded.

    ``step``: number of updates applied so far (1, 2, ...; 0 for a quantizer with nothing to learn);
    ``epoch``: passes over the training rows so far (float); ``loss``: the objective the quantizer minimises;
    ``quantization_error``: mean (|u| - 1)^2 (see the module docstring); ``terms``: extra named numbers.
    """

    step: int
    epoch: float
    loss: float
    quantization_error: float
    terms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["terms"] = dict(self.terms)
        return d


@runtime_checkable
class Quantizer(Protocol):
    """What every quantizer offers and what callers use (see :class:`BaseQuantizer` for the implementation).

    ``name`` is the registry name, ``label`` the display name, ``needs_labels`` whether ``fit`` needs ``y``
    (random search). After fitting (or :meth:`set_rotation`): ``rotation_`` (n_bits, n_bits) orthogonal and
    ``mean_`` (n_bits,) the centre subtracted first (zeros unless centring). ``state()`` / ``set_rotation(**state)``
    round-trip a fitted quantizer through the run store."""

    n_bits: int
    name: str
    label: str
    needs_labels: bool
    if TYPE_CHECKING:  # learned state: present once fitted (isinstance works on unfitted quantizers too)
        rotation_: np.ndarray
        mean_: np.ndarray

    def fit(self, X, y=None) -> Self: ...

    def fit_steps(self, X, y=None) -> Iterator[FitStep]: ...

    def transform(self, X) -> np.ndarray: ...

    def encode(self, X) -> np.ndarray: ...

    def set_rotation(self, rotation, mean=None) -> Self: ...

    def state(self) -> dict[str, np.ndarray]: ...

    def to_dict(self) -> dict[str, Any]: ...


def sphere_rows(X: np.ndarray, n_bits: int | None = None) -> np.ndarray:
    """Rows rescaled to norm ``sqrt(n_bits)`` (``n_bits`` defaults to the width); zero rows stay zero."""
    n_bits = X.shape[1] if n_bits is None else n_bits
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    scale = np.where(norms > 0, np.sqrt(n_bits) / np.where(norms > 0, norms, 1), 0)
    return (X * scale).astype(X.dtype, copy=False)


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal matrix (float64): QR of a Gaussian matrix with the signs of R's diagonal fixed.

    The QR runs in torch on one thread: numpy's multi-threaded BLAS took ~80 ms for a 64 x 64 factorisation
    when the machine's other core was busy (~0.3 ms here).
    """
    import torch

    from hashviz.quantize.objectives import torch_threads

    with torch_threads():
        q, r = torch.linalg.qr(torch.from_numpy(rng.standard_normal((n, n))))
        q = q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0)
    return q.numpy()


def check_orthogonal(R: np.ndarray, atol: float = 1e-5) -> float:
    """max |R^T R - I|; raises InvalidInputError when above ``atol``."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise InvalidInputError(f"a rotation must be square, got shape {R.shape}", "")
    err = float(np.abs(R.T @ R - np.eye(R.shape[0])).max()) if R.size else 0.0
    if not err <= atol:
        raise InvalidInputError(f"the matrix is not orthogonal: max |R^T R - I| = {err:.2e} > {atol:g}",
                                "pass a rotation_ saved from a fitted quantizer")
    return err


class BaseQuantizer:
    """Shared implementation of the :class:`Quantizer` contract. Subclasses implement :meth:`_steps`."""

    #: registry name, e.g. "hq"
    name: ClassVar[str] = ""
    #: the name people read (tables, legends, the app): the one home of display labels
    label: ClassVar[str] = ""
    #: True when fit needs labels (random search)
    needs_labels: ClassVar[bool] = False

    def __init__(self, n_bits: int) -> None:
        self.n_bits = n_bits

    # ------------------------------------------------------------------ parameters and provenance
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments as given (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Self:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise InvalidInputError(f"{type(self).__name__} has no option {key!r}",
                                        f"valid options: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly provenance: quantizer name, class and constructor arguments."""
        return {"quantizer": self.name, "class": type(self).__name__, "params": self.get_params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ validation
    def _validate_n_bits(self) -> int:
        return check_int(self.n_bits, "n_bits", lo=1, hi=4096,
                         hint="n_bits is the width of the embeddings (one bit per dimension)")

    def _validate_X(self, X, *, what: str = "X", min_rows: int = 1) -> np.ndarray:
        n_bits = self._validate_n_bits()
        try:
            A = np.asarray(X)
        except (TypeError, ValueError) as e:  # ragged lists
            raise InvalidInputError(f"{what} is not an array of numbers: {e}", "pass a 2-D float array") from e
        if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
            raise InvalidInputError(f"{what} must hold numbers, got dtype {A.dtype}", "pass a 2-D float array")
        if A.ndim != 2:
            raise InvalidInputError(
                f"{what} must be 2-D (n_rows, n_bits), got {A.ndim}-D with shape {A.shape}",
                "one row per item; for a single item use X.reshape(1, -1)")
        if A.shape[1] != n_bits:
            raise InvalidInputError(
                f"{what} has {A.shape[1]} columns but this quantizer has n_bits={n_bits}",
                "quantizers rotate embeddings whose width equals the code length: set n_bits to the width")
        if A.shape[0] < min_rows:
            raise InvalidInputError(f"{what} has {A.shape[0]} rows; fitting needs at least {min_rows}",
                                    "fit on more embeddings")
        A = A.astype(np.float32, copy=False)
        if not np.isfinite(A).all():
            bad = int((~np.isfinite(A)).any(axis=1).sum())
            raise InvalidInputError(f"{what} contains NaN or infinite values ({bad} rows)",
                                    "drop or repair those rows before fitting")
        return np.ascontiguousarray(A)

    def _validate_y(self, y, n: int) -> np.ndarray:
        if y is None:
            raise InvalidInputError(f"{type(self).__name__} needs labels: call fit(X, y)",
                                    "y: (n,) int class labels or (n, c) multi-hot labels of the training rows")
        y = np.asarray(y)
        if y.ndim not in (1, 2) or y.shape[0] != n:
            raise InvalidInputError(f"y must have one label (row) per row of X ({n}), got shape {y.shape}",
                                    "y: (n,) int class labels or (n, c) multi-hot labels")
        return y

    def _validate_preprocess(self) -> str:
        return check_choice(getattr(self, "preprocess", "none"), "preprocess", PREPROCESS,
                            hint="'sphere' rescales rows to norm sqrt(n_bits) (the HQ paper), 'none' keeps them")

    def _prepare(self, X) -> np.ndarray:
        """Validated float32 training matrix after centring (``mean_``) and the ``preprocess`` rescaling."""
        X = self._validate_X(X, min_rows=2)
        self.mean_ = X.mean(axis=0, dtype=np.float64) if getattr(self, "center", False) else np.zeros(X.shape[1])
        if getattr(self, "center", False):
            X = (X - self.mean_.astype(np.float32)).astype(np.float32)
        if self._validate_preprocess() == "sphere":
            X = sphere_rows(X)
        return X

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> Self:
        """Fit on ``X`` (n, n_bits) (and labels ``y`` for random search); consumes :meth:`fit_steps`."""
        for _ in self.fit_steps(X, y):
            pass
        return self

    def fit_steps(self, X, y=None) -> Iterator[FitStep]:
        """Validate, reset the learned state and return an iterator with one :class:`FitStep` per update."""
        self._reset()
        Xp = self._prepare(X)
        y = self._validate_y(y, Xp.shape[0]) if self.needs_labels else None
        self.n_features_in_ = Xp.shape[1]
        return self._steps(Xp, y)

    def _reset(self) -> None:
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)

    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:  # pragma: no cover - abstract
        """Set the initial ``rotation_`` now, then return the iterator of updates (subclasses)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ using a fitted quantizer
    def _check_fitted(self) -> np.ndarray:
        try:
            R = self.rotation_
        except AttributeError:
            R = None
        if R is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet",
                                 "call fit(X) (or consume fit_steps(X)) before transform/encode")
        return R

    def set_rotation(self, rotation, mean=None) -> Self:
        """Use a saved rotation (and mean) without fitting, e.g. a checkpoint from the run store."""
        n_bits = self._validate_n_bits()
        R = np.asarray(rotation, dtype=np.float64)
        if R.shape != (n_bits, n_bits):
            raise InvalidInputError(f"rotation must be ({n_bits}, {n_bits}), got {R.shape}", "")
        check_orthogonal(R)
        m = np.zeros(n_bits) if mean is None else np.asarray(mean, dtype=np.float64).reshape(-1)
        if m.shape != (n_bits,):
            raise InvalidInputError(f"mean must have {n_bits} entries, got {m.shape}", "")
        self._reset()
        self.rotation_ = R
        self.mean_ = m
        self.n_features_in_ = n_bits
        return self

    def state(self) -> dict[str, np.ndarray]:
        """``{"rotation", "mean"}`` (float64) of a fitted quantizer: what the run store keeps; ``set_rotation(
        **state)`` on a new quantizer of the same kind gives the same codes."""
        R = self._check_fitted()
        mean = getattr(self, "mean_", None)
        return {"rotation": np.asarray(R, dtype=np.float64),
                "mean": np.zeros(R.shape[0]) if mean is None else np.asarray(mean, dtype=np.float64)}

    def transform(self, X) -> np.ndarray:
        """``(X - mean_) @ rotation_`` as float32 (n, n_bits); continuous, rows not rescaled."""
        R = self._check_fitted()
        X = self._validate_X(X)
        mean = getattr(self, "mean_", None)
        if mean is not None and np.any(mean):
            X = X - mean.astype(np.float32)
        return (X @ np.asarray(R, dtype=np.float32)).astype(np.float32, copy=False)

    def encode(self, X) -> np.ndarray:
        """Packed uint8 codes (n, ceil(n_bits / 8)) of ``transform(X) >= 0``."""
        return _encode_codes(self.transform(X))
