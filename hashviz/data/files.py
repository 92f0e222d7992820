"""Image files on disk: an image folder (one subfolder per class) and a multi-label list file.

Every file is decoded once when the dataset is built (cheaply: JPEGs are decoded at reduced size); any file PIL
cannot read is skipped and listed in ``dataset.skipped`` with the reason, never fatal. Pixels are read again on
demand by ``dataset.load_images``: centre-cropped to a square and resized to ``image_size`` (default 224, the
input size of the torchvision backbones). Hidden files (names starting with ".") are ignored.

List file format (NUS-WIDE / MS-COCO as used across deep-hashing code), one image per line::

    relative/path/to/image.jpg 0 1 0 0 1 …

a path relative to ``root`` (default: the list file's folder; paths may not contain spaces) then one 0/1 per
class → multi-hot labels. Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashviz.data.dataset import ImageDataset, digest
from hashviz.data.hierarchy import resolve
from hashviz.data.sources import make_split, protocol_with
from hashviz.errors import DataUnavailableError, InvalidInputError

DEFAULT_IMAGE_SIZE = 224
USER_PROTOCOL = {"query_fraction": 0.1}


def read_image(path: str, size: int) -> np.ndarray:
    """Decode one image file as uint8 (size, size, 3): RGB, centre-cropped to a square, resized."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG: decode at reduced scale (no-op for other formats)
        im = im.convert("RGB")
        im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _load_or_fail(path: str, size: int) -> np.ndarray:
    try:
        return read_image(path, size)
    except Exception as e:  # noqa: BLE001 - the file changed since the dataset was built
        raise DataUnavailableError(f"cannot read image {path} ({e})",
                                   "the file changed after the dataset was loaded: load the dataset again") from None


def _probe(path: Path) -> str | None:
    """None if PIL can decode the file, else the reason it cannot (never raises)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (32, 32))
            im.load()
        return None
    except Image.DecompressionBombError as e:
        return f"image too large ({e})"
    except Exception as e:  # noqa: BLE001 - any decoder failure means "skip this file"
        msg = str(e) or type(e).__name__
        return f"not a readable image ({msg})"


def _check_size(image_size) -> int:
    try:
        size = int(image_size)
    except (TypeError, ValueError):
        size = 0
    if size < 8 or size > 1024:
        raise InvalidInputError(f"image_size must be an integer between 8 and 1024, got {image_size!r}",
                                f"the default {DEFAULT_IMAGE_SIZE} suits the torchvision backbones")
    return size


def _file_stamp(path: Path) -> tuple:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns)


def load_imagefolder(path=None, *, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0,
                     n_query_per_class: int | None = None, n_train_per_class: int | None = None,
                     hierarchy=None) -> ImageDataset:
    """One subfolder per class (``path/cat/*.jpg``, ``path/dog/*.png``…); unreadable files are skipped and listed."""
    if path is None:
        raise InvalidInputError("the imagefolder source needs path=FOLDER",
                                "give a folder with one subfolder per class")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataUnavailableError(f"image folder not found: {root}",
                                   "give a folder that holds one subfolder per class, each with that class's images")
    size = _check_size(image_size)
    skipped: list[tuple[str, str]] = []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for f in sorted(root.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            skipped.append((str(f), "not inside a class folder"))
    paths: list[str] = []
    labels: list[int] = []
    stamps: list = []
    class_names: list[str] = []
    for d in class_dirs:
        files = sorted(p for p in d.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(d).parts))
        good = []
        for f in files:
            reason = _probe(f)
            if reason is None:
                good.append(f)
            else:
                skipped.append((str(f), reason))
        if not good:
            skipped.append((str(d), "class folder without readable images (class left out)"))
            continue
        for f in good:
            paths.append(str(f))
            labels.append(len(class_names))
            stamps.append((str(f.relative_to(root)), *_file_stamp(f)))
        class_names.append(d.name)
    if len(paths) < 2 or len(class_names) < 1:
        raise InvalidInputError(f"{root} has {len(paths)} readable images in {len(class_names)} class folders",
                                "put each class's images in its own subfolder: FOLDER/<class name>/<image files>")
    y = np.asarray(labels, dtype=np.int64)
    proto = protocol_with(USER_PROTOCOL, n_query_per_class, n_train_per_class)
    names = tuple(class_names)
    return ImageDataset(name="imagefolder", paths=tuple(paths), image_size=size, labels=y, class_names=names,
                        split=make_split(y, proto, seed, f"image folder {root.name}"), seed=int(seed),
                        protocol=proto,
                        hierarchy=resolve(hierarchy, names, None), skipped=tuple(skipped),
                        fingerprint=digest("imagefolder", str(root.resolve()), stamps, y, size),
                        description=f"image folder {root} ({len(names)} classes)", loader=_load_or_fail)


def _why(e: Exception) -> str:
    """Why a text file could not be read, without its content (a UnicodeDecodeError quotes the bytes it met)."""
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text: undecodable byte at offset {e.start}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__


def _read_class_names(class_names, n_classes: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(i) for i in range(n_classes))
    if isinstance(class_names, str | Path):
        p = Path(class_names).expanduser()
        try:
            names = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"cannot read class names file {p} ({_why(e)})",
                                    "one class name per line") from None
    else:
        names = [str(c) for c in class_names]
    if len(names) != n_classes:
        raise InvalidInputError(f"{len(names)} class names for {n_classes} label columns",
                                "give one class name per label column, in column order")
    return tuple(names)


def parse_list_file(path: Path) -> tuple[list[str], np.ndarray]:
    """(relative paths, (n, c) bool) from a list file; a bad line raises with its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataUnavailableError(f"list file not found: {path}", "give the path of the list file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"cannot read list file {path} ({_why(e)})",
                                "a UTF-8 text file, one image per line") from None
    rel: list[str] = []
    rows: list[list[int]] = []
    n_cols = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        tokens = s.split()
        if len(tokens) < 2:
            raise InvalidInputError(f"{path}, line {lineno}: expected 'image/path.jpg 0 1 0 …', got a path without "
                                    "labels", "each line is an image path followed by one 0/1 per class")
        bad = next((i for i, t in enumerate(tokens[1:], start=1) if t not in ("0", "1")), None)
        if bad is not None:  # the position is shown, not the text (file content stays out of messages)
            raise InvalidInputError(f"{path}, line {lineno}: labels must be 0 or 1, but label {bad} of "
                                    f"{len(tokens) - 1} is not", "each line is an image path followed by one 0/1 "
                                    "per class (paths may not contain spaces)")
        row = [int(t) for t in tokens[1:]]
        if n_cols is None:
            n_cols = len(row)
        elif len(row) != n_cols:
            raise InvalidInputError(f"{path}, line {lineno}: {len(row)} labels, but earlier lines have {n_cols}",
                                    "every line needs one 0/1 per class")
        rel.append(tokens[0])
        rows.append(row)
    if not rel:
        raise InvalidInputError(f"{path} has no image lines", "each line: image/path.jpg 0 1 0 …")
    return rel, np.asarray(rows, dtype=bool)


def load_listfile(path=None, *, root=None, image_size: int = DEFAULT_IMAGE_SIZE, class_names=None, seed: int = 0,
                  n_query_per_class: int | None = None, n_train_per_class: int | None = None,
                  hierarchy=None) -> ImageDataset:
    """Multi-label list file (see the module docstring); missing or unreadable images are skipped and listed.

    ``class_names``: a sequence of names or a text file with one name per line (default ``"0"``, ``"1"``…)."""
    if path is None:
        raise InvalidInputError("the listfile source needs path=LIST.txt", "give the path of the list file")
    list_path = Path(path).expanduser()
    base = Path(root).expanduser() if root is not None else list_path.parent
    if root is not None and not base.is_dir():
        raise DataUnavailableError(f"image root folder not found: {base}",
                                   "root= is the folder the paths in the list file are relative to")
    size = _check_size(image_size)
    rel, rows = parse_list_file(list_path)
    names = _read_class_names(class_names, rows.shape[1])
    skipped: list[tuple[str, str]] = []
    keep: list[int] = []
    paths: list[str] = []
    stamps: list = []
    for i, r in enumerate(rel):
        full = Path(r) if os.path.isabs(r) else base / r
        if not full.is_file():
            skipped.append((str(full), "file not found"))
            continue
        reason = _probe(full)
        if reason is not None:
            skipped.append((str(full), reason))
            continue
        keep.append(i)
        paths.append(str(full))
        stamps.append((r, *_file_stamp(full)))
    if len(keep) < 2:
        raise DataUnavailableError(f"only {len(keep)} of the {len(rel)} images in {list_path} could be read "
                                   f"(looked under {base})",
                                   "check root=: the paths in the list file are relative to it")
    labels = rows[keep]
    proto = protocol_with(USER_PROTOCOL, n_query_per_class, n_train_per_class)
    return ImageDataset(name="listfile", paths=tuple(paths), image_size=size, labels=labels, class_names=names,
                        split=make_split(labels, proto, seed, f"list file {list_path.name}"), seed=int(seed),
                        protocol=proto,
                        hierarchy=resolve(hierarchy, names, None), skipped=tuple(skipped),
                        fingerprint=digest("listfile", str(list_path.resolve()), str(base.resolve()), stamps,
                                           labels, size, names),
                        description=f"list file {list_path} ({len(names)} labels, multi-label)",
                        loader=_load_or_fail)

