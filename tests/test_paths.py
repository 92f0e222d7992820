"""The hashviz home folder: HASHVIZ_HOME pointing at a file is a clear error, not a NotADirectoryError later."""

from __future__ import annotations

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
