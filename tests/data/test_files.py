"""Image folders and list files from tiny real files; thumbnails."""

from __future__ import annotations

import numpy as np
import pytest

from hashviz.data import ImageDataset, get_dataset
from hashviz.data.thumbnails import grid, thumbnail, thumbnails, tile
from hashviz.errors import DataUnavailableError, InvalidInputError
from tests.data.fakes import write_png


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pets"
    for i in range(3):
        write_png(root / "cat" / f"c{i}.png", (255, 0, 0))
    for i in range(3):
        write_png(root / "dog" / f"d{i}.jpg", (0, 0, 255), size=(30, 30))
    write_png(root / "dog" / "grey.png", 90, mode="L")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00")
    (root / "empty").mkdir()
    (root / "stray.png").write_bytes(b"")
    return root


def test_imagefolder_skips_and_lists_bad_files(folder):
    d = get_dataset("imagefolder", path=str(folder), image_size=16)
    assert d.class_names == ("cat", "dog")
    assert d.n == 7 and np.bincount(d.labels).tolist() == [3, 4]
    skipped = {p.split("/")[-1]: r for p, r in d.skipped}
    assert set(skipped) == {"broken.png", "notes.txt", "empty", "stray.png"}
    assert "not a readable image" in skipped["broken.png"] and "class left out" in skipped["empty"]
    assert "not inside a class folder" in skipped["stray.png"]
    imgs = d.load_images()
    assert imgs.shape == (7, 16, 16, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs[0], np.broadcast_to([255, 0, 0], (16, 16, 3)))
    grey = imgs[d.paths.index(str(folder / "dog" / "grey.png"))]
    assert (grey == 90).all()
    assert d.image_shape == (16, 16, 3) and (d.split == 1).sum() >= 1


def test_imagefolder_fingerprint_tracks_files(folder):
    a = get_dataset("imagefolder", path=str(folder), image_size=16)
    b = get_dataset("imagefolder", path=str(folder), image_size=16)
    c = get_dataset("imagefolder", path=str(folder), image_size=32)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    write_png(folder / "cat" / "c9.png", (1, 2, 3))
    assert get_dataset("imagefolder", path=str(folder), image_size=16).fingerprint != a.fingerprint


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataUnavailableError, match="image folder not found"):
        get_dataset("imagefolder", path=str(tmp_path / "nope"))
    (tmp_path / "x").mkdir()
    with pytest.raises(InvalidInputError, match="0 readable images"):
        get_dataset("imagefolder", path=str(tmp_path / "x"))
    with pytest.raises(InvalidInputError, match="image_size"):
        get_dataset("imagefolder", path=str(tmp_path / "x"), image_size=3)


def _listfile(tmp_path):
    root = tmp_path / "imgs"
    write_png(root / "a.png", (255, 0, 0))
    write_png(root / "b.png", (0, 255, 0))
    write_png(root / "sub" / "c.png", (0, 0, 255))
    write_png(root / "d.png", (9, 9, 9))
    lst = tmp_path / "lists" / "train.txt"
    lst.parent.mkdir()
    lst.write_text("a.png 1 0 1\n\nb.png 0 1 0\nmissing.png 1 1 1\nsub/c.png 1 1 0\nd.png 0 0 1\n")
    return root, lst


def test_listfile_multilabel_with_missing_image(tmp_path):
    root, lst = _listfile(tmp_path)
    d = get_dataset("listfile", path=str(lst), root=str(root), image_size=8, class_names=["x", "y", "z"], seed=1)
    assert d.multilabel and d.labels.dtype == bool
    np.testing.assert_array_equal(d.labels, [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    assert d.skipped == ((str(root / "missing.png"), "file not found"),)
    assert d.class_names == ("x", "y", "z")
    np.testing.assert_array_equal(d.load_images([2])[0], np.broadcast_to([0, 0, 255], (8, 8, 3)))
    assert set(np.unique(d.split)) <= {0, 1, 2} and (d.split == 1).sum() >= 1


def test_listfile_bad_lines_name_the_line(tmp_path):
    root, lst = _listfile(tmp_path)
    lst.write_text("a.png 1 0 1\nb.png 0 2 0\n")
    with pytest.raises(InvalidInputError, match="line 2: labels must be 0 or 1"):
        get_dataset("listfile", path=str(lst), root=str(root))
    lst.write_text("a.png 1 0 1\n# comment\nb.png 0 1\n")
    with pytest.raises(InvalidInputError, match="line 3: 2 labels, but earlier lines have 3"):
        get_dataset("listfile", path=str(lst), root=str(root))
    lst.write_text("a.png 1 0 1\nb.png\n")
    with pytest.raises(InvalidInputError, match="line 2: expected"):
        get_dataset("listfile", path=str(lst), root=str(root))
    lst.write_text("a.png 1 0\nb.png x y\n")
    with pytest.raises(InvalidInputError, match="line 2"):
        get_dataset("listfile", path=str(lst), root=str(root))


def test_listfile_wrong_root_and_names(tmp_path):
    root, lst = _listfile(tmp_path)
    with pytest.raises(DataUnavailableError, match="only 0 of the 5 images"):
        get_dataset("listfile", path=str(lst))  # default root = the list file's folder: nothing there
    with pytest.raises(InvalidInputError, match="2 class names for 3 label columns"):
        get_dataset("listfile", path=str(lst), root=str(root), class_names=["a", "b"])
    with pytest.raises(DataUnavailableError, match="list file not found"):
        get_dataset("listfile", path=str(tmp_path / "none.txt"), root=str(root))


def test_thumbnails_and_grid():
    images = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    d = ImageDataset(name="tiny", images=images, labels=[0, 1, 0, 1, 0], class_names=("a", "b"),
                     split=[1, 2, 0, 2, 1])
    t = thumbnail(d, 2, size=8)
    assert t.shape == (8, 8, 3) and t.dtype == np.uint8
    np.testing.assert_array_equal(t[::2, ::2, 0], images[2])  # nearest-neighbour enlargement keeps pixels
    g = grid(d, [0, 1, 2], size=8, n_cols=2, pad=1)
    assert g.shape == (2 * 8 + 3, 2 * 8 + 3, 3)
    np.testing.assert_array_equal(g[1:9, 1:9], thumbnails(d, [0], 8)[0])
    assert (g[10:18, 10:18] == 255).all()  # the empty fourth cell
    assert tile(np.zeros((0, 8, 8, 3), np.uint8)).shape[2] == 3
    with pytest.raises(InvalidInputError):
        thumbnail(d, 0, size=2)


def test_thumbnail_placeholder_without_images(tmp_path, blobs):
    z, labels = blobs
    np.savez(tmp_path / "e.npz", z=z, labels=labels)
    d = get_dataset("embeddings", path=str(tmp_path / "e.npz"))
    assert (thumbnails(d, [0, 1], size=6) == 128).all()
