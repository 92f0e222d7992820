"""CIFAR-10 and CIFAR-100 from the official "python version" files in a local root.

Layout (what ``torchvision.datasets.CIFAR10/100(root, download=True)`` extracts)::

    <root>/cifar-10-batches-py/   data_batch_1 … data_batch_5, test_batch, batches.meta
    <root>/cifar-100-python/      train, test, meta

The default root is ``<hashviz home>/data/cifar``. Nothing is downloaded unless ``download=True``.

Why unpickling here is acceptable: the official files are Python pickles and there is no other format. We open
only those fixed file names inside the chosen root, and read them with a restricted unpickler that resolves no
global except the few numpy array constructors the format needs (``_reconstruct``, ``ndarray``, ``dtype``) and
``_codecs.encode`` (how Python 3 writes bytes in protocol-2 pickles); any other global (``os.system``,
``builtins.eval``…) raises before anything runs. User-chosen files never go through this reader.

A pickle can also make numpy allocate: ``ndarray((N, 3072))`` or ``_reconstruct(ndarray, (N,), …)`` build N rows
from a few bytes. So the unpickler hands out checked stand-ins: ``ndarray`` is a marker that only
``_reconstruct`` accepts (calling it fails), ``_reconstruct`` refuses shapes beyond the CIFAR layout
(:data:`MAX_BATCH_BYTES`), ``dtype`` refuses object dtypes (whose state would allocate from a claimed shape), and
``_codecs.encode`` accepts only latin-1. Array data then comes from the file's own bytes (numpy checks the size),
and the result is checked against the layout — ``data`` uint8 (n, 3072), one label per row — before any copy.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from pathlib import Path

import numpy as np

from hashviz.data.dataset import ImageDataset, digest
from hashviz.data.hierarchy import from_label_pairs, resolve
from hashviz.data.sources import make_split, protocol_with
from hashviz.errors import DataUnavailableError, InvalidInputError
from hashviz.validate import check_choice

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
SPECS = {
    "cifar10": {"folder": "cifar-10-batches-py", "archive": "cifar-10-python.tar.gz",
                "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"], "meta": "batches.meta",
                "protocol": {"n_query_per_class": 100, "n_train_per_class": 500}},
    "cifar100": {"folder": "cifar-100-python", "archive": "cifar-100-python.tar.gz",
                 "train": ["train"], "test": ["test"], "meta": "meta",
                 "protocol": {"n_query_per_class": 10, "n_train_per_class": 50}},
}

MAX_BATCH_ROWS = 50_000  # the CIFAR-100 train file; CIFAR-10 batches have 10,000
MAX_BATCH_BYTES = MAX_BATCH_ROWS * 3072
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _Refused(pickle.UnpicklingError):
    """Raised by our checks (its message is ours, safe to show); other errors are named by type only."""


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` inside a batch file: accepted as ``_reconstruct``'s first argument only."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise _Refused("numpy.ndarray(...) is called directly, which CIFAR batch files never do")


_NDARRAY = _NdarrayMarker()


def _reconstruct(subtype, shape, dtype):
    from numpy._core import multiarray

    if subtype is not _NDARRAY:
        raise _Refused("_reconstruct of something other than a plain numpy array")
    try:
        dims = tuple(int(d) for d in (shape if isinstance(shape, tuple) else (shape,)))
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        raise _Refused("_reconstruct with a bad shape or dtype") from None
    if any(d < 0 for d in dims) or math.prod(dims) * max(itemsize, 1) > MAX_BATCH_BYTES:
        raise _Refused(f"an array of shape {dims} is larger than any CIFAR batch")
    return multiarray._reconstruct(np.ndarray, dims, dtype)


def _dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise _Refused("object arrays are not part of the CIFAR format")
    return dt


def _scalar(dtype, *args):
    from numpy._core import multiarray

    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _Refused("only plain numpy scalars are allowed")
    return multiarray.scalar(dtype, *args)


def _encode(obj, encoding: str = "utf-8", errors: str = "strict"):
    import _codecs

    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Refused("only latin-1 byte strings are allowed")
    return _codecs.encode(obj, "latin1", errors)


_STAND_INS = {"_reconstruct": _reconstruct, "ndarray": _NDARRAY, "dtype": _dtype, "scalar": _scalar,
              "encode": _encode}


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only checked stand-ins for the numpy constructors the CIFAR format needs; the rest is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            shown = f"{module}.{name}"
            shown = shown if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,80}", shown) else "(an unusual name)"
            raise _Refused(f"global {shown} is not allowed in a CIFAR batch file")
        return _STAND_INS[name]


def read_batch(path: Path) -> dict:
    """One official CIFAR batch file as a dict with str keys (restricted unpickler, see module docstring)."""
    try:
        with open(path, "rb") as f:
            data = _CifarUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, RecursionError, MemoryError, UnicodeError) as e:
        why = str(e) if isinstance(e, _Refused) else type(e).__name__
        raise InvalidInputError(f"{path} is not a valid CIFAR batch file ({why})",
                                f"replace it with the official file from {CIFAR_URL}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} is not a valid CIFAR batch file (no dict inside)",
                                f"replace it with the official file from {CIFAR_URL}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in data.items()}


def default_root() -> Path:
    from hashviz.paths import data_root

    return data_root() / "cifar"


def _missing(name: str, root: Path) -> list[str]:
    spec = SPECS[name]
    folder = root / spec["folder"]
    return [f for f in spec["train"] + spec["test"] + [spec["meta"]] if not (folder / f).is_file()]


def available(name: str, root=None) -> tuple[bool, str]:
    root = Path(root).expanduser() if root is not None else default_root()
    missing = _missing(name, root)
    folder = root / SPECS[name]["folder"]
    if not missing:
        return True, f"found in {folder}"
    return False, f"missing {folder}/ ({', '.join(missing)})"


def _unavailable(name: str, root: Path, missing: list[str], reason: str = "") -> DataUnavailableError:
    spec = SPECS[name]
    folder = root / spec["folder"]
    files = ", ".join(spec["train"] + spec["test"] + [spec["meta"]])
    label = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    return DataUnavailableError(
        f"{label} is not on disk: {folder}/ is missing {', '.join(missing)}{reason}",
        f"create the folder {folder}/ and put in it {files} — the 'python version' of {label} "
        f"({spec['archive']} from {CIFAR_URL}, extracted into {root}); or pass download=True when online "
        f"(CLI: --download); or give another root= folder")


def _download(name: str, root: Path) -> None:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except Exception as e:  # network errors come in many types (URLError, OSError, RuntimeError)
        raise _unavailable(name, root, _missing(name, root), f"; the download failed ({e})") from None


#: CIFAR-10 splits of the papers whose evaluators hashviz reproduces (``split_preset=``):
#: ``deephash`` — DeepHash-pytorch's ``cifar10-1`` (utils/tools.py cifar_dataset): 100 queries / 500 train per
#: class, database = all but the queries (the same as the default split); ``h2q`` — the HQ authors'
#: src/data/process/CIFAR_10.py: 500 train, 100 queries and 100 validation items per class, database = the rest
#: (53,000) without train and validation.
SPLIT_PRESETS = {
    "deephash": {"n_query_per_class": 100, "n_train_per_class": 500},
    "h2q": {"n_query_per_class": 100, "n_train_per_class": 500, "n_val_per_class": 100,
            "train_in_database": False},
}


def load_cifar(name: str = "cifar10", *, root=None, download: bool = False, seed: int = 0,
               n_query_per_class: int | None = None, n_train_per_class: int | None = None,
               hierarchy=None, split_preset: str | None = None) -> ImageDataset:
    """CIFAR-10 or CIFAR-100, train and test pooled (60,000 images of 32×32×3), with the standard protocol or,
    for CIFAR-10, a paper's split (``split_preset``: ``deephash`` or ``h2q``, see :data:`SPLIT_PRESETS`)."""
    check_choice(name, "CIFAR variant", SPECS)
    if split_preset is not None:
        split_preset = check_choice(str(split_preset).strip().lower(), "split preset", SPLIT_PRESETS)
        if name != "cifar10":
            raise InvalidInputError(f"the split presets are CIFAR-10's; {name} has none",
                                    "leave split_preset out, or set n_query_per_class / n_train_per_class")
        if n_query_per_class is not None or n_train_per_class is not None:
            raise InvalidInputError("give a split preset or per-class counts, not both",
                                    "drop n_query_per_class / n_train_per_class, or the preset")
    spec = SPECS[name]
    root = Path(root).expanduser() if root is not None else default_root()
    missing = _missing(name, root)
    if missing and download:
        _download(name, root)
        missing = _missing(name, root)
    if missing:
        raise _unavailable(name, root, missing)
    folder = root / spec["folder"]
    data, fine, coarse = [], [], []
    label_key = "labels" if name == "cifar10" else "fine_labels"
    for fname in spec["train"] + spec["test"]:
        batch = read_batch(folder / fname)
        if "data" not in batch or label_key not in batch:
            raise InvalidInputError(f"{folder / fname} has no 'data'/'{label_key}' entries",
                                    f"replace it with the official file from {CIFAR_URL}")
        x, y = _check_layout(batch["data"], batch[label_key], folder / fname, 100 if name == "cifar100" else 10)
        data.append(x)
        fine.append(y)
        if name == "cifar100":
            coarse.append(np.asarray(batch.get("coarse_labels", np.zeros_like(y)), dtype=np.int64))
    images = np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    labels = np.concatenate(fine)
    meta = read_batch(folder / spec["meta"])
    names_key = "label_names" if name == "cifar10" else "fine_label_names"
    class_names = tuple(_decode(s) for s in meta.get(names_key, []))
    n_classes = int(labels.max()) + 1
    if len(class_names) < n_classes:
        raise InvalidInputError(f"{folder / spec['meta']} names {len(class_names)} classes but labels go up to "
                                f"{n_classes - 1}", f"replace it with the official file from {CIFAR_URL}")
    default_tree = None
    if name == "cifar100":
        coarse_names = tuple(_decode(s) for s in meta.get("coarse_label_names", []))
        coarse_labels = np.concatenate(coarse)
        if coarse_names and len(coarse_names) > int(coarse_labels.max()):
            default_tree = from_label_pairs(labels, coarse_labels, class_names, coarse_names,
                                            source=str(folder))
    if split_preset is not None:
        proto = dict(SPLIT_PRESETS[split_preset])
    else:
        proto = protocol_with(spec["protocol"], n_query_per_class, n_train_per_class)
    label = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    # a preset whose train items differ from the default split gets its own fingerprint (keys of features and
    # heads follow it): the h2q train set is not the default's
    tag = (name,) if split_preset in (None, "deephash") else (name, f"split_preset={split_preset}")
    return ImageDataset(name=name, images=images, labels=labels, class_names=class_names,
                        split=make_split(labels, proto, seed, label), seed=int(seed), protocol=proto,
                        hierarchy=resolve(hierarchy, class_names, default_tree),
                        fingerprint=digest(*tag, images, labels),
                        description=f"{label} train + test pooled ({len(labels)} images 32×32×3) from {folder}")


def _check_layout(data, labels, path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as uint8 (n, 3072) and ``labels`` as int64 (n,) in 0..n_classes-1, checked before any copy."""
    hint = f"replace it with the official file from {CIFAR_URL}"
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or not 1 <= data.shape[0] <= MAX_BATCH_ROWS:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise InvalidInputError(f"{path}: data is {what}, expected uint8 rows (n, 3072) (32×32×3, channel-major) "
                                f"with n <= {MAX_BATCH_ROWS:,}", hint)
    n = data.shape[0]
    if not isinstance(labels, list | np.ndarray) or len(labels) != n:
        count = len(labels) if isinstance(labels, list | np.ndarray) else type(labels).__name__
        raise InvalidInputError(f"{path}: {count} labels for {n} images, expected one label per image", hint)
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{path}: labels are not integers", hint) from None
    if y.shape != (n,) or y.min() < 0 or y.max() >= n_classes:
        raise InvalidInputError(f"{path}: labels must be integers 0..{n_classes - 1}, one per image", hint)
    return data, y


def _decode(s) -> str:
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)
