"""Thumbnails and image grids as uint8 RGB arrays for display (no UI code here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.validate import check_int

PLACEHOLDER_GREY = 128


def _to_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images[..., None], 3, axis=-1) if images.ndim == 3 else images


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (k, h, w[, 3]) → uint8 (k, size, size, 3): grey becomes RGB, centre-cropped to a square, resized
    (nearest for enlarging tiny images so pixels stay crisp, antialiased bilinear for shrinking)."""
    from PIL import Image, ImageOps

    images = _to_rgb(np.asarray(images, dtype=np.uint8))
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for k, img in enumerate(images):
        if img.shape[:2] == (size, size):
            out[k] = img
            continue
        method = Image.Resampling.NEAREST if min(img.shape[:2]) < size else Image.Resampling.BILINEAR
        out[k] = np.asarray(ImageOps.fit(Image.fromarray(img), (size, size), method=method))
    return out


def _check_size(size) -> int:
    return check_int(size, "thumbnail size", lo=4, hi=1024, hint="e.g. size=64")


def thumbnails(dataset, indices: Sequence[int] | np.ndarray, size: int = 64) -> np.ndarray:
    """uint8 (k, size, size, 3) thumbnails of ``dataset`` images; a grey placeholder where it has no images."""
    size = _check_size(size)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not dataset.has_images:
        return np.full((len(idx), size, size, 3), PLACEHOLDER_GREY, dtype=np.uint8)
    return resize_images(dataset.load_images(idx), size)


def thumbnail(dataset, index: int, size: int = 64) -> np.ndarray:
    """One uint8 (size, size, 3) thumbnail."""
    return thumbnails(dataset, [int(index)], size)[0]


def grid(dataset, indices: Sequence[int] | np.ndarray, *, size: int = 64, n_cols: int = 10, pad: int = 2,
         background: int = 255) -> np.ndarray:
    """Thumbnails tiled row by row into one uint8 (H, W, 3) image with ``pad`` pixels between tiles."""
    return tile(thumbnails(dataset, indices, size), n_cols=n_cols, pad=pad, background=background)


def tile(images: np.ndarray, *, n_cols: int = 10, pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile uint8 (k, s, s[, 3]) images into a grid; empty cells are ``background``."""
    images = _to_rgb(np.asarray(images, dtype=np.uint8))
    if n_cols < 1 or pad < 0:
        raise InvalidInputError(f"n_cols must be >= 1 and pad >= 0, got {n_cols}, {pad}", "e.g. n_cols=10, pad=2")
    k = len(images)
    h, w = (images.shape[1], images.shape[2]) if k else (0, 0)
    cols = min(n_cols, max(k, 1))
    rows = max(-(-k // cols), 1)
    out = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), background, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = img
    return out
