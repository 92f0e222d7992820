"""The MNIST recipe and image decoding for a user's own image (hashviz.data.drawing): known answers on synthetic
strokes and real mnist5k digits, any polarity and mode, and bad files refused with clear messages."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hashviz.data import drawing as D
from hashviz.errors import InvalidInputError


def png(a: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` (valid CRCs) with a tiny data chunk: a decompression bomb
    as far as the header goes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def mnist_digits():
    from hashviz.data.sources import _mnist5k_arrays

    return _mnist5k_arrays()


# ---- the recipe on synthetic strokes ---------------------------------------------------------------------------
def test_a_box_is_cropped_scaled_to_20_and_centred_by_mass():
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[30:230, 60:110] = 0  # a 200 × 50 black bar, off centre, on white
    out = D.normalise_digit(D.grey_levels(Image.open(io.BytesIO(png(canvas)))))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side scaled to 20
    assert cols[-1] - cols[0] + 1 == 5  # aspect kept: 50 / 200 × 20
    assert out.max() == 255 and out[0].max() == 0  # white strokes on black
    cy, cx = D.centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_polarity_alpha_and_size_do_not_change_the_result():
    rng = np.random.default_rng(0)
    white_on_black = np.zeros((64, 48), np.uint8)
    white_on_black[10:50, 12:20] = 255
    white_on_black[10:18, 12:40] = rng.integers(120, 255, (8, 28))
    variants = {
        "white on black, grey": png(white_on_black),
        "black on white, RGB": png(np.dstack([255 - white_on_black] * 3)),
        "black on white, opaque RGBA": png(np.dstack([255 - white_on_black] * 3 + [np.full_like(white_on_black,
                                                                                            255)]), "RGBA"),
        # black strokes on a transparent background: the background reads as white
        "black strokes, transparent": png(np.dstack([np.zeros_like(white_on_black)] * 3 + [white_on_black]),
                                          "RGBA"),
        # white strokes on a transparent background: the background reads as black
        "white strokes, transparent": png(np.dstack([np.full_like(white_on_black, 255)] * 3 + [white_on_black]),
                                          "RGBA"),
    }
    outs = {k: D.prepare_image(v, D.DIGIT_RECIPES["mnist5k"]) for k, v in variants.items()}
    ref = outs["white on black, grey"]
    for k, out in outs.items():
        assert np.abs(out.astype(int) - ref).max() <= 1, k


def test_an_mnist_digit_enlarged_and_inverted_gives_the_digit_back():
    """A digit of the query split as a 28×28 PNG and the same digit inverted, enlarged pixel for pixel to 280×280
    RGBA (a black-on-white canvas export): the same 28×28 input to the network."""
    images, _ = mnist_digits()
    for i in (0, 777, 2500, 4999):
        a = images[i]
        small = D.prepare_image(png(a), D.DIGIT_RECIPES["mnist5k"])
        big = np.asarray(Image.fromarray(255 - a).resize((280, 280), Image.Resampling.NEAREST))
        rgba = np.dstack([big, big, big, np.full_like(big, 255)])
        assert np.array_equal(D.prepare_image(png(rgba, "RGBA"), D.DIGIT_RECIPES["mnist5k"]), small), i
        # the recipe keeps an MNIST digit where MNIST put it: close to the original pixels
        assert np.abs(small.astype(int) - a).mean() < 3, i


def test_the_recipe_on_mnist_digits_keeps_their_box_and_centre():
    images, _ = mnist_digits()
    for a in images[::500]:
        out = D.normalise_digit(a.astype(float))
        rows = np.flatnonzero((out > 25).any(axis=1))
        cols = np.flatnonzero((out > 25).any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
        cy, cx = D.centre_of_mass(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_digits_recipe_fills_the_8x8_field():
    canvas = np.full((100, 100), 255, np.uint8)
    canvas[10:90, 40:60] = 0
    out = D.prepare_image(png(canvas), D.DIGIT_RECIPES["digits"])
    assert out.shape == (8, 8)
    assert np.flatnonzero(out.any(axis=1)).tolist() == list(range(8))  # 80 px tall → the whole 8 rows


def test_photo_recipe_is_the_image_folder_reader():
    """Colour datasets: the upload goes through the very function dataset files go through."""
    from hashviz.data.files import read_image

    rng = np.random.default_rng(1)
    photo = rng.integers(0, 255, (90, 150, 3), dtype=np.uint8)
    data = png(photo)
    recipe = D.image_recipe("imagefolder", {"image_size": 64})
    out = D.prepare_image(data, recipe)
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out, read_image(io.BytesIO(data), 64))
    assert D.image_recipe("cifar10").size == 32 and not D.image_recipe("cifar10").drawable
    assert D.image_recipe("mnist5k").drawable and D.image_recipe("embeddings") is None


def test_jpeg_noise_does_not_grow_the_box():
    canvas = np.full((280, 280, 3), 255, np.uint8)
    canvas[40:240, 120:160] = 0
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="JPEG", quality=60)
    out = D.prepare_image(buf.getvalue(), D.DIGIT_RECIPES["mnist5k"])
    rows = np.flatnonzero((out > 25).any(axis=1))
    assert rows[-1] - rows[0] + 1 == 20


# ---- bad files -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "words"), [
    (b"", "is empty"),
    (b"hello, not an image at all", "is not an image"),
    (png(np.zeros((1, 1), np.uint8)), "1×1 pixels"),
    (png(np.zeros((5, 300), np.uint8)), "300×5 pixels"),
    (png_header_only(7000, 7000), "too large (7000×7000 pixels)"),  # over our 40 MP, under PIL's own limit
    (png_header_only(30000, 30000), "too large"),  # PIL's DecompressionBombError
    (png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))[:300], "could not be decoded"),
], ids=["empty", "text", "1x1", "thin", "7000x7000", "bomb", "truncated"])
def test_bad_files_get_a_clear_message(data, words):
    with pytest.raises(InvalidInputError) as e:
        D.prepare_image(data, D.DIGIT_RECIPES["mnist5k"], name="upload.png")
    assert words in e.value.message and "upload.png" in e.value.message
    assert e.value.hint


def test_a_blank_image_is_refused():
    with pytest.raises(InvalidInputError, match="blank"):
        D.prepare_image(png(np.full((280, 280), 255, np.uint8)), D.DIGIT_RECIPES["mnist5k"])


def test_too_many_bytes_are_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(D, "MAX_IMAGE_BYTES", 1000)
    data = png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="MB, over the .* limit for one image"):
        D.open_image(data, name="big.png")


def test_modes_16_bit_palette_and_animated():
    a = np.zeros((40, 40), np.uint16)
    a[5:35, 18:22] = 60000
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    out16 = D.prepare_image(buf.getvalue(), D.DIGIT_RECIPES["mnist5k"])
    grey = np.zeros((40, 40), np.uint8)
    grey[5:35, 18:22] = 255
    ref = D.prepare_image(png(grey), D.DIGIT_RECIPES["mnist5k"])
    assert np.abs(out16.astype(int) - ref).max() <= 1
    pal = Image.fromarray(grey).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="GIF", save_all=True, append_images=[Image.fromarray(255 - grey).convert("P")])
    assert np.abs(D.prepare_image(buf.getvalue(), D.DIGIT_RECIPES["mnist5k"]).astype(int) - ref).max() <= 1
