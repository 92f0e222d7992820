"""The hashviz home folder: HASHVIZ_HOME pointing at a file is a clear error, not a NotADirectoryError later."""

from __future__ import annotations

import os

import pytest

from hashviz.errors import InvalidInputError
from hashviz.paths import cache_dir, check_folder, home


def test_home_that_is_a_file(tmp_path, monkeypatch):
    afile = tmp_path / "home"
    afile.write_text("x")
    monkeypatch.setenv("HASHVIZ_HOME", str(afile))
    with pytest.raises(InvalidInputError) as e:
        home()
    assert e.value.message == f"HASHVIZ_HOME {afile} is a file, not a folder"
    assert "unset" in e.value.hint
    monkeypatch.setenv("HASHVIZ_HOME", str(afile / "deeper" / "still"))
    with pytest.raises(InvalidInputError, match="is inside .* which is a file"):
        cache_dir()


def test_home_that_does_not_exist_yet_is_fine_and_not_created(tmp_path, monkeypatch):
    target = tmp_path / "new" / "home"
    monkeypatch.setenv("HASHVIZ_HOME", str(target))
    assert home() == target and cache_dir() == target / "cache"
    assert not (tmp_path / "new").exists()
    assert check_folder(tmp_path, "x") == tmp_path


# ---- data roots and confinement ------------------------------------------------------------------------------
def test_data_roots_are_the_home_data_folder_then_the_environment(tmp_path, monkeypatch):
    from hashviz.paths import data_roots

    monkeypatch.delenv("HASHVIZ_DATA_ROOTS", raising=False)
    assert data_roots(tmp_path / "home") == (tmp_path / "home" / "data",)
    monkeypatch.setenv("HASHVIZ_DATA_ROOTS", f"{tmp_path / 'a'}{os.pathsep} {os.pathsep}{tmp_path / 'b'}"
                                             f"{os.pathsep}{tmp_path / 'a'}")
    assert data_roots(tmp_path / "home") == (tmp_path / "home" / "data", tmp_path / "a", tmp_path / "b")
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "h2"))
    assert data_roots()[0] == tmp_path / "h2" / "data"  # default: the current home


@pytest.fixture
def roots(tmp_path):
    """Two data roots with a file each, an outside folder with a secret, and symlinks in and out."""
    a, b, outside = tmp_path / "a", tmp_path / "b", tmp_path / "outside"
    for d in (a / "imgs", b / "sub", outside):
        d.mkdir(parents=True)
    (a / "imgs" / "x.npz").write_bytes(b"x")
    (b / "sub" / "y.npz").write_bytes(b"y")
    (outside / "id_rsa").write_text("secret")
    (a / "out").symlink_to(outside)  # a link inside a root to a folder outside it
    (a / "to_b").symlink_to(b / "sub")  # a link between roots: stays inside the roots
    return a, b, outside


def test_confine_accepts_paths_inside_the_roots(roots):
    from hashviz.paths import confine

    a, b, _ = roots
    assert confine(a / "imgs" / "x.npz", (a, b)) == a / "imgs" / "x.npz"
    assert confine("imgs/x.npz", (a, b)) == a / "imgs" / "x.npz"  # relative: inside a root
    assert confine("sub/y.npz", (a, b)) == b / "sub" / "y.npz"  # relative: the root where it exists
    assert confine("new/folder", (a, b)) == a / "new" / "folder"  # not there yet: the first root
    assert confine(f"  {a}/imgs/../imgs/x.npz ", (a, b)) == a / "imgs" / "x.npz"
    assert confine(a, (a, b)) == a
    assert confine(a / "to_b" / "y.npz", (a, b)) == b / "sub" / "y.npz"  # resolved, still inside a root
    # "~user" is not looked up (that would tell which accounts exist): it is a name inside the root
    assert confine("~root/.ssh/id_rsa", (a,)) == a / "~root" / ".ssh" / "id_rsa"


@pytest.mark.parametrize("typed", [
    "/etc/passwd", "/etc/shadow", "/no/such/file", "{outside}/id_rsa", "{outside}", "{a}/../outside/id_rsa",
    "../outside/id_rsa", "imgs/../../outside/id_rsa", "out/id_rsa", "out", "{a}/out/id_rsa", "~", "~/x",
    "", "   ", "a\x00b",
])
def test_confine_refuses_everything_else_with_one_message(roots, typed):
    from hashviz.paths import OutsideDataRootsError, confine

    a, b, outside = roots
    typed = typed.format(a=a, outside=outside)
    with pytest.raises(OutsideDataRootsError) as e:
        confine(typed, (a,))
    with pytest.raises(OutsideDataRootsError) as missing:
        confine("/no/such/place/at/all", (a,))
    # the same words whether the path exists, is a secret behind a symlink, or is nothing at all
    assert (e.value.message, e.value.hint) == (missing.value.message, missing.value.hint)
    assert "not inside" in e.value.message and str(a) in e.value.hint and "HASHVIZ_DATA_ROOTS" in e.value.hint
    assert "id_rsa" not in e.value.message + e.value.hint and "passwd" not in e.value.message + e.value.hint


def test_a_root_that_is_itself_a_symlink_works(tmp_path):
    from hashviz.paths import OutsideDataRootsError, confine

    real = tmp_path / "real"
    (real / "d").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert confine(link / "d", (link,)) == real / "d"
    with pytest.raises(OutsideDataRootsError):
        confine(tmp_path / "real" / "d", (tmp_path / "other",))
    with pytest.raises(OutsideDataRootsError):
        confine("d", ())  # no roots: nothing is opened


def test_max_open_bytes(monkeypatch):
    from hashviz.paths import DEFAULT_MAX_OPEN_BYTES, max_open_bytes

    monkeypatch.delenv("HASHVIZ_MAX_OPEN_BYTES", raising=False)
    assert max_open_bytes() == DEFAULT_MAX_OPEN_BYTES == 4_000_000_000
    monkeypatch.setenv("HASHVIZ_MAX_OPEN_BYTES", "8e9")
    assert max_open_bytes() == 8_000_000_000
    for bad in ("lots", "0", "-5", "nan"):
        monkeypatch.setenv("HASHVIZ_MAX_OPEN_BYTES", bad)
        with pytest.raises(InvalidInputError, match="HASHVIZ_MAX_OPEN_BYTES must be a number of bytes"):
            max_open_bytes()


def test_available_offline_in_the_app_is_no_existence_oracle(roots, tmp_path):
    """Outside the data roots the form's answer is one sentence whether the path exists or not; inside, it says
    what it found (the operator's data)."""
    from hashviz.data.registry import get_entry

    a, b, outside = roots
    answers = {get_entry(name).available_offline(roots=(a,), path=p)
               for name in ("imagefolder", "listfile", "embeddings")
               for p in ("/etc/shadow", "/etc/passwd", str(outside), str(outside / "id_rsa"), "/no/such", "out")}
    assert len(answers) == 1
    ((ok, why),) = answers
    assert ok is False and "not inside" in why and "shadow" not in why
    assert get_entry("cifar10").available_offline(roots=(a,), root="/etc") == (ok, why)
    assert get_entry("imagefolder").available_offline(roots=(a, b), path="imgs") == (True, f"found {a / 'imgs'}")
    assert get_entry("imagefolder").available_offline(roots=(a, b), path="nothing") == (
        False, f"{a / 'nothing'} does not exist")
    # the command line (no roots) still answers for any path
    assert get_entry("listfile").available_offline(path=str(outside / "id_rsa"))[0] is True
