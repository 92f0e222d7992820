"""A user's own image (a canvas drawing or a chosen file) turned into what the backbone saw in training.

- :func:`open_image` decodes image *bytes* with PIL only, refusing what is not an image, empty or damaged files,
  images under :data:`MIN_SIDE` pixels a side and decompression bombs (more than :data:`MAX_PIXELS` pixels or
  :data:`MAX_IMAGE_BYTES` bytes) before anything is decoded.
- :func:`grey_levels` flattens any mode (RGB, RGBA, LA, palette, 16-bit) to grey levels 0..255; transparent areas
  become the background, whatever the polarity of the strokes.
- :func:`normalise_digit` is the MNIST recipe (LeCun et al.): grey levels, MNIST polarity (white strokes on
  black, whatever the input's), cropped to the strokes' bounding box, scaled so its longer side is 20 px
  (aspect kept, anti-aliased) and placed in a 28×28 field so that its centre of mass sits at the field's centre
  (pixel (14, 14), where the mnist5k digits have it: measured mean 13.99, 14.00).
- :func:`image_recipe` says which preparation a run's dataset needs: the digit recipe for mnist5k (28×28) and
  scikit-learn's digits (8×8, the digit filling the field as there), and for colour datasets the dataset
  loader's own steps — centre-cropped to a square and resized to the dataset's image size
  (:func:`hashviz.data.files.read_image`, the very function ImageFolder and list-file images go through).
  The backbone's own transform (:meth:`hashviz.features.backbones.Backbone.transform`) then runs on the result
  exactly as on the dataset's images.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hashviz.errors import InvalidInputError

MAX_IMAGE_BYTES = 25_000_000  # an upload or a file given to `hashviz query`
MAX_PIXELS = 40_000_000  # about 6,300 × 6,300: anything larger is refused before decoding (decompression bombs)
MIN_SIDE = 8
MNIST_SIZE, MNIST_BOX = 28, 20
INK_THRESHOLD = 0.1  # a pixel belongs to the strokes' bounding box when its ink is above 10% of the strongest
BLANK_LEVEL = 8.0  # ink (grey levels away from the background) below this everywhere: nothing is drawn

_HINT = "give a PNG, JPEG, GIF, BMP or WebP picture"


def open_image(data: bytes, *, name: str = "the image"):
    """``data`` (the bytes of a file the user chose) as a loaded PIL image (first frame).

    InvalidInputError for empty data, bytes that are no image (or a damaged one), more than
    :data:`MAX_IMAGE_BYTES` bytes, more than :data:`MAX_PIXELS` pixels (checked from the header, before
    decoding) and sides under :data:`MIN_SIDE` pixels. Messages name the file by ``name``, never its content."""
    from PIL import Image, UnidentifiedImageError

    if data is None or len(data) == 0:
        raise InvalidInputError(f"{name} is empty (0 bytes)", _HINT)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInputError(f"{name} is {len(data) / 1e6:.1f} MB, over the {MAX_IMAGE_BYTES / 1e6:.0f} MB "
                                "limit for one image", "make the picture smaller (a few hundred pixels a side is "
                                "plenty: it is shrunk to the backbone's input size)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(name, None) from None
        except UnidentifiedImageError:
            raise InvalidInputError(f"{name} is not an image PIL can read", _HINT) from None
        except Exception:  # noqa: BLE001 - a broken header raises all sorts of errors in PIL's plugins
            raise InvalidInputError(f"{name} is not a readable image (damaged or another format)", _HINT) from None
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise _too_large(name, (w, h))
        if min(w, h) < MIN_SIDE:
            raise InvalidInputError(f"{name} is {w}×{h} pixels: too small to show a digit or an object",
                                    f"give a picture at least {MIN_SIDE}×{MIN_SIDE} pixels (e.g. the 280×280 "
                                    "canvas, or a 28×28 MNIST digit)")
        try:
            im.seek(0)
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(name, (w, h)) from None
        except Exception:  # noqa: BLE001 - truncated data, bad compression stream, ...
            raise InvalidInputError(f"{name} could not be decoded (truncated or damaged)", _HINT) from None
    return im


def _too_large(name: str, size) -> InvalidInputError:
    shown = f" ({size[0]}×{size[1]} pixels)" if size else ""
    return InvalidInputError(f"{name} is too large{shown}: hashviz decodes images of at most "
                             f"{MAX_PIXELS / 1e6:.0f} million pixels (a guard against decompression bombs)",
                             "give a smaller picture: it is shrunk to the backbone's input size anyway")


def grey_levels(im) -> np.ndarray:
    """float64 (h, w) grey levels 0..255 (ITU-R 601 luma, PIL's ``convert("L")``). Where the image is transparent
    the background shows: white behind dark strokes, black behind light ones (the strokes' mean level, weighted
    by opacity, decides), so a transparent PNG of either polarity reads as drawn."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits by the image's range
        a = np.asarray(im, dtype=np.float64)
        hi = float(a.max()) if a.size else 0.0
        return a * (255.0 / hi) if hi > 0 else a
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        return np.clip(a, 0.0, 255.0)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    if not has_alpha:
        return np.asarray(im.convert("L"), dtype=np.float64)
    la = np.asarray(im.convert("RGBA").convert("LA"), dtype=np.float64)
    grey, alpha = la[..., 0], la[..., 1] / 255.0
    if alpha.min() >= 1.0:
        return grey
    weight = float(alpha.sum())
    strokes = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    background = 255.0 if strokes < 127.5 else 0.0
    return grey * alpha + background * (1.0 - alpha)


def ink(grey: np.ndarray) -> np.ndarray:
    """MNIST polarity: how far each pixel is from the background level (the median of the 1-pixel frame),
    strokes positive whether they were dark on light or light on dark; float64, 0 at the background."""
    g = np.asarray(grey, dtype=np.float64)
    frame = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    background = float(np.median(frame))
    out = background - g if background > 127.5 else g - background
    return np.clip(out, 0.0, None)


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float (h, w) → float ``shape`` (rows, columns): area averaging when shrinking, bilinear when enlarging."""
    from PIL import Image

    h, w = a.shape
    if (h, w) == tuple(shape):
        return a.astype(np.float64)
    shrink = shape[0] <= h and shape[1] <= w
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    out = Image.fromarray(a.astype(np.float32), mode="F").resize((shape[1], shape[0]), method)
    return np.asarray(out, dtype=np.float64)


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass of a non-negative image (its geometric centre when it is all zero)."""
    a = np.asarray(a, dtype=np.float64)
    total = float(a.sum())
    if total <= 0:
        return (a.shape[0] - 1) / 2.0, (a.shape[1] - 1) / 2.0
    rows, cols = np.indices(a.shape)
    return float((a * rows).sum() / total), float((a * cols).sum() / total)


def normalise_digit(grey: np.ndarray, *, size: int = MNIST_SIZE, box: int = MNIST_BOX,
                    centre: str = "mass") -> np.ndarray:
    """The MNIST recipe on grey levels: uint8 (size, size), white strokes on black.

    Strokes are found by polarity (:func:`ink`) and stretched so the strongest is 255; the bounding box of the
    pixels above :data:`INK_THRESHOLD` of that is cropped, scaled so its longer side is ``box`` pixels (aspect
    kept) and placed in the ``size``² field with its centre of mass (``centre="mass"``, MNIST) or its box
    (``"box"``) at the field's centre ``size / 2`` (pixel 14 for MNIST). InvalidInputError when nothing is drawn."""
    strokes = ink(grey)
    top = float(strokes.max()) if strokes.size else 0.0
    if top < BLANK_LEVEL:
        raise InvalidInputError("the image is blank: no strokes stand out from the background",
                                "draw a digit (a few thick strokes) or choose a picture of one")
    strokes = strokes * (255.0 / top)
    rows = np.flatnonzero((strokes > INK_THRESHOLD * 255.0).any(axis=1))
    cols = np.flatnonzero((strokes > INK_THRESHOLD * 255.0).any(axis=0))
    crop = strokes[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    patch = _resize(crop, (max(1, round(h * scale)), max(1, round(w * scale))))
    ph, pw = patch.shape
    if centre == "mass":
        cy, cx = centre_of_mass(patch)
    else:
        cy, cx = (ph - 1) / 2.0, (pw - 1) / 2.0
    target = size / 2.0 if centre == "mass" else (size - 1) / 2.0
    top_row = int(np.clip(round(target - cy), 0, size - ph))
    left = int(np.clip(round(target - cx), 0, size - pw))
    out = np.zeros((size, size), dtype=np.float64)
    out[top_row:top_row + ph, left:left + pw] = patch
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ImageRecipe:
    """How a new image becomes a dataset-like image: ``kind`` ``"digit"`` (the MNIST recipe into a
    ``size``² field with a ``box``-pixel digit) or ``"photo"`` (RGB, centre-cropped square resized to ``size``)."""

    kind: str
    size: int
    box: int = 0
    centre: str = "mass"

    @property
    def drawable(self) -> bool:
        """A digit dataset: a canvas drawing makes sense."""
        return self.kind == "digit"

    def describe(self) -> str:
        if self.kind == "digit":
            how = "centre of mass" if self.centre == "mass" else "bounding box"
            return (f"grey, white strokes on black, cropped to the strokes, scaled to {self.box}×{self.box} and "
                    f"centred by {how} in {self.size}×{self.size}")
        return f"RGB, centre-cropped to a square and resized to {self.size}×{self.size}, as the dataset's images"


DIGIT_RECIPES = {
    "mnist5k": ImageRecipe("digit", MNIST_SIZE, MNIST_BOX, "mass"),
    # scikit-learn's digits fill their 8×8 field (normalised 32×32 bitmaps, 4×4 blocks counted)
    "digits": ImageRecipe("digit", 8, 8, "box"),
}


def image_recipe(dataset: str, dataset_options: Mapping | None = None) -> ImageRecipe | None:
    """The preparation for images of a run made from ``dataset`` (``None`` for an embeddings file: no images)."""
    from hashviz.data.files import DEFAULT_IMAGE_SIZE

    name = str(dataset)
    if name in DIGIT_RECIPES:
        return DIGIT_RECIPES[name]
    if name in ("cifar10", "cifar100"):
        return ImageRecipe("photo", 32)
    if name in ("imagefolder", "listfile"):
        size = (dataset_options or {}).get("image_size") or DEFAULT_IMAGE_SIZE
        return ImageRecipe("photo", int(size))
    return None


def prepare_image(data: bytes, recipe: ImageRecipe, *, name: str = "the image") -> np.ndarray:
    """Image bytes → uint8 image shaped like the dataset's: (size, size) grey for digits, (size, size, 3) RGB
    for photos (:func:`hashviz.data.files.read_image` on the checked bytes, as dataset files are read)."""
    im = open_image(data, name=name)
    if recipe.kind == "digit":
        return normalise_digit(grey_levels(im), size=recipe.size, box=recipe.box, centre=recipe.centre)
    from hashviz.data.files import read_image

    im.close()
    return read_image(io.BytesIO(data), recipe.size)
