"""The embeddings-file source: reading and checking a user's embeddings ``.npz`` — arrays only, no bundle.

File layout (``np.savez``, read with ``allow_pickle=False``) — also what users bring:

    z or features   (n, d) float            required, unless the file has z_<bits> arrays:
    z_<bits>        (n, bits) float         one per code length (z_16, z_32, z_64, …): one file, several lengths
    labels          (n,) int  or (n, c) 0/1 required
    split           (n,) uint8 0 train, 1 query, 2 database (train items also belong to the database); optional;
                    3 = train not in the database, 4 = held out (the HQ authors' CIFAR-10 split)
    ids             (n,) int index into the source dataset; optional
    class_names     (c,) str; optional
    image_paths     (n,) str; optional
    thumbnails      (n, h, w) or (n, h, w, 3) uint8; optional
    meta            () str holding a JSON object; optional

Reading is defensive (users upload these files): the zip directory and every member's ``.npy`` header are read
first (:func:`inspect_npz`), so a header that claims more data than its member holds, a truncated member, an
object array or arrays bigger than :data:`MAX_NPZ_BYTES` uncompressed are refused before anything is allocated.
The limit is the ``max_bytes`` argument of :func:`read_embeddings_file`; :func:`npz_size_limit` changes the default
for a block of code (the CLI reads files of any size).

Several code lengths in one file: ``z_16``, ``z_32``, … (each ``(n, bits)``, the same rows in the same order, sharing
``labels``, ``split``, ``thumbnails`` and the rest). :func:`read_embeddings_file` reads them all (``every_length=True``,
the shared arrays read once) or one (``n_bits=…``). A file has either ``z``/``features``
or ``z_<bits>`` arrays, not both. Single labels with a few huge values (e.g. one label
10⁹) are remapped to their distinct values, named after them, when no class names are given.

This module is the data layer's side of the embeddings file: it returns checked arrays (:class:`FileEmbeddings`,
one per code length), and :class:`hashviz.embeddings.Embeddings` (the stage above, which adds splits, saving and
loading) is built from them. :func:`check_fields` is the one check of the bundle's arrays — ``Embeddings`` applies
it too — so the dataset's fingerprint is computed from exactly the arrays the pipeline stores.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np

from hashviz.data.splits import SPLIT_CODES, check_split, stratified_split
from hashviz.errors import InvalidInputError
from hashviz.npyio import HEADER_LOCK
from hashviz.validate import check_int

EXPECTED_LAYOUT = (
    "expected an .npz with 'z' (or 'features') of shape (n, d) float — or one 'z_<bits>' (n, bits) per code length, "
    "e.g. z_16, z_32, z_64 — and 'labels' of shape (n,) int or (n, c) 0/1; optional: 'split' (n,) 0 train/1 query/"
    "2 database, 'class_names' (c,) str, 'image_paths' (n,) str, 'thumbnails' (n, h, w[, 3]) uint8. Save it with "
    "np.savez('file.npz', z=z, labels=labels)")

# Default limit on the uncompressed size of the arrays read from one .npz (the app's uploads; the CLI lifts it).
MAX_NPZ_BYTES = 256_000_000
# At most this many classes (single-label ids or multi-label columns), and for single labels without class
# names at most max(2, n_rows) ids before they are remapped to their distinct values.
MAX_CLASSES = 100_000
# The arrays Embeddings.load reads (and z_<bits>, see LENGTH_NAME); any other member is neither read nor counted.
ARRAY_NAMES = ("z", "features", "labels", "split", "ids", "class_names", "image_paths", "thumbnails", "meta")
LENGTH_NAME = re.compile(r"z_([1-9][0-9]{0,3})")  # z_16, z_32, …: one array per code length
MAX_CODE_LENGTHS = 16  # z_<bits> arrays per file (each becomes a bit length of the run, with its quantizers)
_NPY_MAGIC = b"\x93NUMPY"
DEFAULT_LIMIT = object()  # max_bytes=DEFAULT_LIMIT: the limit default_max_bytes() gives at the call
_limit: ContextVar = ContextVar("hashviz_npz_size_limit", default=DEFAULT_LIMIT)


class ArrayInfo(NamedTuple):
    """What an ``.npy`` header inside an ``.npz`` declares, read without reading the data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def default_max_bytes() -> int | None:
    """The limit :meth:`Embeddings.load` applies when not given one: :data:`MAX_NPZ_BYTES` (read at each call),
    or what an enclosing :func:`npz_size_limit` block set (``None``: no limit)."""
    value = _limit.get()
    return MAX_NPZ_BYTES if value is DEFAULT_LIMIT else value


@contextmanager
def npz_size_limit(max_bytes: int | None) -> Iterator[None]:
    """Within the block (this thread or task), ``Embeddings.load`` defaults to ``max_bytes`` (``None``: no limit)."""
    max_bytes = check_int(max_bytes, "max_bytes", lo=0, none=True, expected="None or a size >= 0",
                          hint="e.g. 2**30 for 1 GiB")
    token = _limit.set(max_bytes)
    try:
        yield
    finally:
        _limit.reset(token)


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def _member_name(filename: str) -> str:
    return filename[:-4] if filename.endswith(".npy") else filename


def _known(name: str) -> bool:
    """A member hashviz reads: one of ARRAY_NAMES or z_<bits>."""
    return name in ARRAY_NAMES or LENGTH_NAME.fullmatch(name) is not None


def _shown(name: str) -> str:
    """A member name for messages: the names hashviz reads are shown, any other is not (it is file content)."""
    return repr(name) if _known(name) else "an array"


def _is_embedding(name: str) -> bool:
    return name in ("z", "features") or LENGTH_NAME.fullmatch(name) is not None


def _lengths(names: Iterable[str]) -> list[tuple[int, str]]:
    """(bits, member name) of the z_<bits> arrays among ``names``, by bits."""
    return sorted((int(m.group(1)), n) for n in names if (m := LENGTH_NAME.fullmatch(n)) is not None)


def _bad_file(label: str, what: str, hint: str = EXPECTED_LAYOUT) -> InvalidInputError:
    return InvalidInputError(f"{label} {what}", hint)


def _open_zip(source, label: str) -> zipfile.ZipFile:
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return zipfile.ZipFile(source)
    except FileNotFoundError:
        raise InvalidInputError(f"no such file: {label}", "check the path of the embeddings file") from None
    except IsADirectoryError:
        raise _bad_file(label, "is a folder, not an .npz file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError):
        pass
    head = b""
    try:
        if hasattr(source, "read"):
            source.seek(0)
            head = source.read(6)
        else:
            with open(source, "rb") as f:
                head = f.read(6)
    except OSError:
        pass
    if head == _NPY_MAGIC:
        raise _bad_file(label, "holds a single array, not an .npz archive of named arrays")
    raise _bad_file(label, "is not a readable .npz file (not a zip archive, or a damaged one)")


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> ArrayInfo | None:
    """The member's declared (shape, dtype, nbytes), checked against the member's size; None if not an array."""
    name = _shown(_member_name(info.filename))
    try:
        with zf.open(info) as m:
            if m.read(6) != _NPY_MAGIC:
                if info.filename.endswith(".npy"):
                    raise _bad_file(label, f"member {name} is not a .npy array (damaged)")
                return None
            version = (m.read(1) or b"\0")[0], (m.read(1) or b"\0")[0]
            if version == (1, 0):
                with HEADER_LOCK:
                    shape, _, dtype = np.lib.format.read_array_header_1_0(m)
            elif version == (2, 0):
                with HEADER_LOCK:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(m)
            else:
                raise _bad_file(label, f"member {name} has an unsupported .npy format version {version}",
                                "save plain arrays with np.savez")
            offset = m.tell()
    except InvalidInputError:
        raise
    except Exception:  # noqa: BLE001 - numpy's header parser raises many types (ValueError, TokenError, ...)
        raise _bad_file(label, f"member {name} has a damaged .npy header") from None
    if dtype.hasobject:
        raise InvalidInputError(f"{label}: {name} holds Python objects, which hashviz does not unpickle",
                                "save plain numeric/string arrays only; " + EXPECTED_LAYOUT)
    nbytes = math.prod(int(d) for d in shape) * int(dtype.itemsize)
    if info.file_size < offset + nbytes:
        raise InvalidInputError(
            f"{label}: {name} declares shape {tuple(int(d) for d in shape)} {dtype} ({_size(nbytes)}) but holds "
            f"only {_size(max(info.file_size - offset, 0))} of data: the member is truncated or its header is forged",
            "save the file again with np.savez; " + EXPECTED_LAYOUT)
    return ArrayInfo(tuple(int(d) for d in shape), dtype, int(nbytes))


def inspect_npz(source, *, names: Iterable[str] | None = None, label: str | None = None) -> dict[str, ArrayInfo]:
    """``{name: ArrayInfo(shape, dtype, nbytes)}`` of the ``.npy`` members of an ``.npz`` (a path or a binary file
    object), from the zip directory and each member's header only — no array data is read.

    ``names``: only these members (default: all; members that are not ``.npy`` arrays are left out). Raises
    InvalidInputError for a file that is not a zip archive, a damaged header, an object (pickled) array, or a
    header that declares more data than its member holds (truncated or forged)."""
    label = label or _label(source)
    wanted = None if names is None else set(names)
    with _open_zip(source, label) as zf:
        return {k: v for k, (v, _) in _inspect(zf, wanted, label).items()}


def _inspect(zf: zipfile.ZipFile, wanted, label: str) -> dict[str, tuple[ArrayInfo, zipfile.ZipInfo]]:
    """``wanted``: a set of names, a predicate on names, or None (all)."""
    out: dict[str, tuple[ArrayInfo, zipfile.ZipInfo]] = {}
    keep = wanted if callable(wanted) else (lambda n: wanted is None or n in wanted)
    for info in zf.infolist():
        name = _member_name(info.filename)
        if info.is_dir() or not keep(name) or name in out:
            continue
        found = _read_header(zf, info, label)
        if found is not None:
            out[name] = (found, info)
    return out


def _label(source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else "the embeddings file"



MIN_ROWS = 3  # one query and two train rows (a quantizer is fitted on the train rows)


def code_lengths(source, *, label: str | None = None) -> tuple[int, ...]:
    """The code lengths an embeddings file holds, from its headers only: the bits of its ``z_<bits>`` arrays, or
    the width of its ``z``/``features``. InvalidInputError for a file without embeddings or labels."""
    label = label or _label(source)
    with _open_zip(source, label) as zf:
        infos = _inspect(zf, _known, label)
        _check_layout_names(infos, label, [_member_name(n) for n in zf.namelist() if not n.endswith("/")])
    lengths = _lengths(infos)
    if lengths:
        return tuple(b for b, _ in lengths)
    shape = infos["z" if "z" in infos else "features"][0].shape
    return (int(shape[1]),) if len(shape) == 2 else ()


def inspect_layout(source, *, max_bytes=DEFAULT_LIMIT, label: str | None = None) -> dict[int, int]:
    """``{bits: rows}`` of an embeddings file, checked from its headers only (nothing big is read): the layout's
    arrays are there (z/features or z_<bits>, and labels), each ``z_<bits>`` has ``bits`` columns and the same rows,
    and every array :func:`load_lengths` would read fits in ``max_bytes`` uncompressed (default
    :func:`default_max_bytes`). The full check of the values happens when the file is loaded."""
    label = label or _label(source)
    limit = default_max_bytes() if max_bytes is DEFAULT_LIMIT else max_bytes
    with _open_zip(source, label) as zf:
        infos = _inspect(zf, _known, label)
        _check_layout_names(infos, label, [_member_name(n) for n in zf.namelist() if not n.endswith("/")])
    lengths = _lengths(infos) or [(None, "z" if "z" in infos else "features")]
    infos = {k: v for k, v in infos.items() if k in {n for _, n in lengths} or not _is_embedding(k)}
    _check_size(infos, label, limit)
    out: dict[int, int] = {}
    for bits, key in lengths:
        shape = infos[key][0].shape
        if len(shape) != 2 or (bits is not None and shape[1] != bits):
            what = f"(n, {bits}), one column per bit" if bits is not None else "(n, d)"
            raise InvalidInputError(f"{label}: {key} has shape {shape}; {key} must be {what}", EXPECTED_LAYOUT)
        rows = next(iter(out.values()), shape[0])
        if shape[0] != rows:
            raise InvalidInputError(f"{label}: {key} has {shape[0]} rows but {lengths[0][1]} has {rows}",
                                    "every z_<bits> holds the same rows, in the same order")
        out[int(shape[1])] = int(shape[0])
    return out


def _check_size(infos, label: str, limit) -> None:
    total = sum(i.nbytes for i, _ in infos.values())
    if limit is not None and total > int(limit):
        raise InvalidInputError(
            f"{label}: its arrays hold {_size(total)} uncompressed, over the {_size(int(limit))} limit",
            "use the command line for big files (python -m hashviz evaluate FILE, or prepare --dataset "
            "embeddings --path FILE), which has no limit; in the app, open it by path from a data folder "
            "(HASHVIZ_MAX_OPEN_BYTES sets that limit); or pass max_bytes=None to Embeddings.load")


def _check_layout_names(infos, label: str, found) -> None:
    """z/features or z_<bits> (not both, at most MAX_CODE_LENGTHS of them) and labels."""
    lengths = _lengths(infos)
    if lengths:
        if "z" in infos or "features" in infos:
            both = "z" if "z" in infos else "features"
            raise InvalidInputError(f"{label} has both {both!r} and per-length arrays "
                                    f"({', '.join(n for _, n in lengths)})",
                                    "keep one layout: 'z' for one code length, or one 'z_<bits>' per length")
        if len(lengths) > MAX_CODE_LENGTHS:
            raise InvalidInputError(f"{label} has {len(lengths)} z_<bits> arrays; hashviz takes at most "
                                    f"{MAX_CODE_LENGTHS} code lengths per file", "split it into several files")
        if "labels" not in infos:
            raise InvalidInputError(f"{label} has no 'labels' array (found: {_found(found)})", EXPECTED_LAYOUT)
        return
    _check_present(infos, label, found)


def _read_arrays(source, label: str, limit, choose) -> dict[str, np.ndarray]:
    """The layout's arrays of an ``.npz``: headers checked first, then ``choose(lengths, infos)`` names the
    embedding arrays to read (the others are neither counted nor read), then the size limit, then the data."""
    with _open_zip(source, label) as zf:
        infos = _inspect(zf, _known, label)
        _check_layout_names(infos, label, [_member_name(n) for n in zf.namelist() if not n.endswith("/")])
        keep = set(choose(_lengths(infos), infos))
        infos = {k: v for k, v in infos.items() if k in keep or not _is_embedding(k)}
        _check_size(infos, label, limit)
        data = {}
        for key, (_, member) in infos.items():
            try:
                with zf.open(member) as m:
                    with HEADER_LOCK:
                        data[key] = np.lib.format.read_array(m, allow_pickle=False)
            except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, RuntimeError):
                raise _bad_file(label, f"member {_shown(key)} is damaged (its data could not be read)",
                                "save the file again with np.savez; " + EXPECTED_LAYOUT) from None
    return data


def _found(names: Iterable[str]) -> str:
    """The array names of a file for a message: plain identifiers only (other names are file content)."""
    names = sorted(set(names))
    shown = [n for n in names if n.isidentifier() and len(n) <= 40 and n.isascii()]
    text = ", ".join(shown)
    if len(shown) < len(names):
        text += f"{' and ' if shown else ''}{len(names) - len(shown)} other"
    return text or "nothing"


def _check_present(names, source: str, found: Iterable[str] | None = None) -> None:
    """z (or features) and labels are among ``names``; the message lists ``found`` (default ``names``)."""
    found = names if found is None else found
    if "z" not in names and "features" not in names:
        raise InvalidInputError(f"{source} has no 'z' or 'features' array (found: {_found(found)})", EXPECTED_LAYOUT)
    if "labels" not in names:
        raise InvalidInputError(f"{source} has no 'labels' array (found: {_found(found)})", EXPECTED_LAYOUT)


def _check_split_codes(split, n: int, source: str) -> np.ndarray:
    split = np.asarray(split)
    if split.shape != (n,) or split.dtype.kind not in "biuf" or not np.isin(split, SPLIT_CODES).all():
        raise InvalidInputError(f"{source}: split must be (n,) = ({n},) with values 0..4, got {split.dtype} "
                                f"{split.shape}", "0 = train, 1 = query, 2 = database, 3 = train not in the "
                                "database, 4 = held out (or leave 'split' out for a seeded split)")
    return split.astype(np.uint8)


def _check_ids(ids, n: int, source: str = "ids") -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise InvalidInputError(f"{source}: ids must have shape ({n},), got {ids.shape}",
                                "one id per row (its index in the source dataset), or leave 'ids' out")
    if ids.dtype.kind == "f" and n and np.isfinite(ids).all() and (np.mod(ids, 1) == 0).all() \
            and np.abs(ids).max() < 2**53:
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in "iu" or (n and (ids.min() < 0 or ids.max() > np.iinfo(np.int64).max)):
        raise InvalidInputError(f"{source}: ids must be integers >= 0 (an index into the source dataset), got "
                                f"{ids.dtype}", "one integer id per row, or leave 'ids' out (0..n-1)")
    return ids.astype(np.int64)


def _string_array(a, name: str, source: str, *, numbers: bool = False) -> np.ndarray:
    a = np.asarray(a)
    kinds = "USbiu" if numbers else "US"
    if a.ndim != 1 or a.dtype.kind not in kinds:
        raise InvalidInputError(f"{source}: {name} must be a 1-D array of strings, got {a.dtype} {a.shape}",
                                EXPECTED_LAYOUT)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "utf-8", "replace")
    return a


def _parse_meta(raw, source: str) -> dict:
    raw = np.asarray(raw)
    hint = "store it as np.array(json.dumps({...})) (a JSON object), or leave 'meta' out"
    if raw.shape != () or raw.dtype.kind not in "US":
        raise InvalidInputError(f"{source}: meta must be one string holding a JSON object, got {raw.dtype} "
                                f"{raw.shape}", hint)
    text = raw[()].decode("utf-8", "replace") if raw.dtype.kind == "S" else str(raw[()])
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInputError(f"{source}: meta is not valid JSON", hint) from None
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{source}: meta must be a JSON object ({{...}}), got a JSON "
                                f"{type(meta).__name__.replace('dict', 'object')}", hint)
    return meta


def _check_labels(labels, n: int, source: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape[:1] != (n,) or labels.ndim not in (1, 2):
        raise InvalidInputError(f"{source}: labels have shape {labels.shape} but z has {n} rows",
                                "give one label per row: (n,) ints or (n, c) multi-hot 0/1")
    if labels.ndim == 1:
        if labels.dtype.kind == "f" and np.isfinite(labels).all() and np.all(np.mod(labels, 1) == 0) \
                and (n == 0 or np.abs(labels).max() < 2**53):
            labels = labels.astype(np.int64)
        if labels.dtype.kind not in "iu":
            raise InvalidInputError(f"{source}: single labels must be integers, got {labels.dtype}",
                                    "map class names to 0..c-1")
        if n and labels.min() < 0:
            raise InvalidInputError(f"{source}: labels must be >= 0, found {labels.min()}", "map classes to 0..c-1")
        if n and labels.max() > np.iinfo(np.int64).max:
            raise InvalidInputError(f"{source}: labels must fit in int64, found {labels.max()}",
                                    "map classes to 0..c-1")
        return labels.astype(np.int64)
    if labels.shape[1] < 1 or labels.shape[1] > MAX_CLASSES:
        raise InvalidInputError(f"{source}: multi-label rows have {labels.shape[1]:,} columns; hashviz handles 1 to "
                                f"{MAX_CLASSES:,} classes", "use a multi-hot (n, c) array, one column per class")
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        raise InvalidInputError(f"{source}: multi-label rows must be 0/1", "use a multi-hot (n, c) array")
    return labels.astype(bool)


def _dense_classes(labels: np.ndarray, names: tuple[str, ...], n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Single labels without class names whose largest id exceeds max(2, n) (or MAX_CLASSES) → their distinct
    values, renumbered 0..k-1 in order and named after the original ids; otherwise unchanged."""
    if labels.ndim != 1 or names:
        return labels, names
    n_classes = int(labels.max()) + 1
    if n_classes <= min(MAX_CLASSES, max(2, n)):
        return labels, names
    values, dense = np.unique(labels, return_inverse=True)
    if len(values) > MAX_CLASSES:
        raise InvalidInputError(f"labels have {len(values):,} distinct values; hashviz handles at most "
                                f"{MAX_CLASSES:,} classes", "group the labels into fewer classes")
    return dense.astype(np.int64).reshape(-1), tuple(str(int(v)) for v in values)


# ---- the checked arrays -----------------------------------------------------------------------------------------
class FileEmbeddings(NamedTuple):
    """The checked arrays of one code length of an embeddings file: the fields of
    :class:`hashviz.embeddings.Embeddings` (``Embeddings(**arrays._asdict())`` builds the bundle)."""

    z: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    class_names: tuple[str, ...]
    image_paths: tuple[str, ...] | None
    meta: dict
    thumbnails: np.ndarray | None

    @property
    def dim(self) -> int:
        return int(self.z.shape[1])


def check_fields(z, labels, split, ids=None, class_names=(), image_paths=None) -> dict:
    """The bundle's arrays, checked and normalised (``{z, labels, split, ids, class_names, image_paths}``): ``z``
    real, finite, 2-D float32; single labels int64 (a few huge ids without class names are remapped to their
    distinct values) or multi-hot bool; split codes uint8; ids int64 (default 0..n-1); one name per class (default
    "0", "1", …); image paths as strings."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise InvalidInputError(f"z must be a 2-D array (n, d), got shape {z.shape}", EXPECTED_LAYOUT)
    if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
        raise InvalidInputError(f"z must be real numbers, got dtype {z.dtype}", EXPECTED_LAYOUT)
    z = z.astype(np.float32, copy=False)
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(axis=1).sum())
        raise InvalidInputError(f"z has NaN or infinite values in {bad} rows",
                                "drop or fix those rows before saving the embeddings")
    n = z.shape[0]
    labels, names = _dense_classes(_check_labels(labels, n), tuple(str(c) for c in class_names), n)
    split = _check_split_codes(split, n, "embeddings")
    ids = _check_ids(ids, n, "embeddings")
    n_classes = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
    names = names or tuple(str(c) for c in range(n_classes))
    if len(names) < n_classes:
        raise InvalidInputError(f"{len(names)} class names for {n_classes} classes",
                                "give one name per class, or leave 'class_names' out")
    return {"z": z, "labels": labels, "split": split.astype(np.uint8), "ids": ids, "class_names": names,
            "image_paths": None if image_paths is None else tuple(str(p) for p in image_paths)}


def fields_from_arrays(data: dict, *, seed: int = 0, source: str = "arrays") -> FileEmbeddings:
    """The checked arrays of a user file's arrays (the layout above), each checked with a message naming what is
    wrong; a missing ``split`` gets a seeded stratified one. The split needs >= 1 query and >= 2 train rows."""
    _check_present(data, source)
    z = np.asarray(data["z"] if "z" in data else data["features"])
    if z.ndim != 2:
        raise InvalidInputError(f"{source}: z must be 2-D (n, d), got shape {z.shape}", EXPECTED_LAYOUT)
    n = z.shape[0]
    if n < MIN_ROWS:
        raise InvalidInputError(
            f"{source} has {'no rows' if n == 0 else f'only {n} rows'} (z has shape {z.shape}); an embeddings "
            f"file needs at least {MIN_ROWS} (1 query and 2 train rows)", EXPECTED_LAYOUT)
    labels = _check_labels(data["labels"], n, source)
    split = data.get("split")
    if split is None:
        split = stratified_split(labels, query_fraction=0.1, seed=seed)
    else:
        split = _check_split_codes(split, n, source)
    check_split(split, f"the split of {source}")
    meta = _parse_meta(data["meta"], source) if "meta" in data else {}
    meta.setdefault("source", source)
    thumbs = data.get("thumbnails")
    if thumbs is not None and (thumbs.dtype != np.uint8 or thumbs.ndim not in (3, 4) or len(thumbs) != n):
        raise InvalidInputError(f"{source}: thumbnails must be uint8 (n, h, w[, 3]) with n = {n}, "
                                f"got {thumbs.dtype} {thumbs.shape}", EXPECTED_LAYOUT)
    paths = data.get("image_paths")
    if paths is not None:
        paths = _string_array(paths, "image_paths", source)
        if len(paths) != n:
            raise InvalidInputError(f"{source}: {len(paths)} image_paths for {n} rows", EXPECTED_LAYOUT)
    names = ()
    if "class_names" in data:
        names = tuple(_string_array(data["class_names"], "class_names", source, numbers=True).tolist())
        if len(names) > MAX_CLASSES:
            raise InvalidInputError(f"{source}: {len(names):,} class names; hashviz handles at most "
                                    f"{MAX_CLASSES:,} classes", "give one name per class")
    checked = check_fields(z, labels, split, _check_ids(data.get("ids"), n, source), names,
                           None if paths is None else paths.tolist())
    return FileEmbeddings(meta=meta, thumbnails=thumbs, **checked)


def read_embeddings_file(path, *, seed: int = 0, name: str | None = None, max_bytes=DEFAULT_LIMIT,
                         n_bits: int | None = None, every_length: bool = False) -> dict[int, FileEmbeddings]:
    """The checked arrays of an embeddings file (a path or a binary file object), ``{bits: FileEmbeddings}`` in
    increasing bits; a missing ``split`` gets a seeded stratified split (10% queries per class, the rest database
    and train). ``name`` labels messages.

    ``max_bytes``: refuse files whose arrays hold more than this many bytes uncompressed, checked from the headers
    before reading (default :func:`default_max_bytes`, i.e. :data:`MAX_NPZ_BYTES`; ``None``: no limit). Only the
    arrays of the layout are read; other members of the archive are ignored.

    ``every_length=True``: every code length (each ``z_<bits>`` array, or the one ``z``), the shared arrays read
    once. Otherwise one: ``n_bits`` names the code length to read from a file with ``z_<bits>`` arrays (only that
    one is read and counted; needed when it has several); for a file with ``z``, the width ``z`` must have."""
    label = name or _label(path)

    def choose(lengths, infos):
        if every_length:
            return [n for _, n in lengths] or ["z" if "z" in infos else "features"]
        if not lengths:
            z = "z" if "z" in infos else "features"
            width = infos[z][0].shape[1] if len(infos[z][0].shape) == 2 else None
            if n_bits is not None and width != int(n_bits):
                raise InvalidInputError(f"{label}: {z!r} has {width} columns, not {int(n_bits)}",
                                        "ask for the width the file has, or leave n_bits out")
            return [z]
        if n_bits is None:
            if len(lengths) > 1:
                raise InvalidInputError(
                    f"{label} holds {len(lengths)} code lengths ({', '.join(str(b) for b, _ in lengths)} bits)",
                    "read one with Embeddings.load(path, n_bits=…), or all with hashviz.embeddings."
                    "load_lengths(path); hashviz prepare --dataset embeddings --path FILE and the app's Data & "
                    "model page take every length")
            return [lengths[0][1]]
        picked = [n for b, n in lengths if b == int(n_bits)]
        if not picked:
            raise InvalidInputError(f"{label} has no {int(n_bits)}-bit embeddings (z_{int(n_bits)})",
                                    f"its code lengths: {', '.join(str(b) for b, _ in lengths)}")
        return picked

    data = _read_arrays(path, label, default_max_bytes() if max_bytes is DEFAULT_LIMIT else max_bytes, choose)
    return _from_file_arrays(data, seed=seed, source=label)


def _from_file_arrays(data: dict, *, seed: int, source: str) -> dict[int, FileEmbeddings]:
    """``{bits: FileEmbeddings}`` from the arrays :func:`_read_arrays` read (one z, or z_<bits> arrays)."""
    lengths = _lengths(data)
    if not lengths:
        one = fields_from_arrays(data, seed=seed, source=source)
        return {one.dim: one}
    shared = {k: v for k, v in data.items() if not LENGTH_NAME.fullmatch(k)}
    n = None
    for bits, key in lengths:
        z = np.asarray(data[key])
        if z.ndim != 2 or z.shape[1] != bits:
            raise InvalidInputError(f"{source}: {key} has shape {z.shape}; {key} must be (n, {bits}), one column "
                                    "per bit", EXPECTED_LAYOUT)
        if n is not None and z.shape[0] != n:
            raise InvalidInputError(f"{source}: {key} has {z.shape[0]} rows but {lengths[0][1]} has {n}",
                                    "every z_<bits> holds the same rows, in the same order")
        n = z.shape[0]
    first = fields_from_arrays({**shared, "z": data[lengths[0][1]]}, seed=seed, source=source)
    out = {lengths[0][0]: first}
    for bits, key in lengths[1:]:
        out[bits] = first._replace(**check_fields(data[key], first.labels, first.split, first.ids, first.class_names,
                                                  first.image_paths))
    return out
