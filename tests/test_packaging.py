"""The package as a user installs it: one version source, dependencies that match the pinned set `make`
installs, and a wheel that carries the CLI entry point and the bundled CNN weights and prepares the default run
when installed outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(name: str) -> dict[str, Requirement]:
    out = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            req = Requirement(line)
            out[req.name.lower()] = req
    return out


def _pinned_versions(reqs: dict[str, Requirement]) -> dict[str, str]:
    """name → the lowest version a requirements line admits (== or >=)."""
    out = {}
    for name, req in reqs.items():
        for spec in req.specifier:
            if spec.operator in ("==", ">="):
                out[name] = spec.version
    return out


@pytest.mark.parametrize(("extra", "file"), [(None, "requirements.txt"), ("dev", "requirements-dev.txt")])
def test_requirements_match_pyproject(extra, file):
    project = _pyproject()["project"]
    declared = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    declared = {Requirement(d).name.lower(): Requirement(d) for d in declared}
    pinned = _requirements(file)
    assert set(declared) == set(pinned), f"{file} and pyproject name different packages"
    versions = _pinned_versions(pinned)
    for name, req in declared.items():
        assert name in versions, f"{file} gives no version for {name}"
        assert req.specifier.contains(versions[name], prereleases=True), \
            f"{file} pins {name} {versions[name]}, outside pyproject's {req.specifier}"


def test_one_version_source():
    import importlib.metadata as md

    import hashviz

    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hashviz.__version__"}
    assert md.version("hashviz") == hashviz.__version__  # `make` installs the project itself (pip install -e .)


def test_console_script_declared_and_installed():
    assert _pyproject()["project"]["scripts"] == {"hashviz": "hashviz.cli:main"}
    exe = Path(sys.executable).with_name("hashviz")
    assert exe.is_file(), "the venv has no `hashviz` command: `make` runs pip install -e ."
    out = subprocess.run([str(exe), "heads", "--json"], capture_output=True, text=True, timeout=120, check=True)
    assert "cel" in {h["name"] for h in json.loads(out.stdout)}


def test_bundled_weights_are_package_data():
    from importlib import resources

    from hashviz.features.backbones import BUNDLED_SHA256, BUNDLED_WEIGHTS, file_sha256

    ref = resources.files("hashviz.features").joinpath("weights", "mnist_cnn.pt")
    assert ref.is_file() and Path(str(ref)) == BUNDLED_WEIGHTS
    assert file_sha256(BUNDLED_WEIGHTS) == BUNDLED_SHA256


def test_benchmarks_do_not_touch_sys_path():
    for f in (ROOT / "benchmarks").glob("*.py"):
        assert "sys.path" not in f.read_text(encoding="utf-8"), f"{f.name} manipulates sys.path"


@pytest.mark.slow
def test_wheel_installed_outside_the_repo_prepares_the_default(tmp_path):
    """`pip wheel .` → metadata with the runtime dependencies and the console script, the weights inside; the
    wheel's files unpacked into a folder outside the repository (a pure-Python wheel installs by unpacking) run
    `hashviz prepare` on the default from a directory where the repository is not importable."""
    import shutil

    src = tmp_path / "src"  # setuptools builds in the source folder: build a copy, never touch the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hashviz", src / "hashviz", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                   check=True, timeout=600, capture_output=True)
    (wheel,) = wheels.glob("hashviz-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "hashviz/features/weights/mnist_cnn.pt" in names
        assert not any(n.startswith(("tests/", "pages/", "benchmarks/")) for n in names)
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist}/METADATA").decode()
        entry_points = zf.read(f"{dist}/entry_points.txt").decode()
        site = tmp_path / "site"
        zf.extractall(site)
    requires = {Requirement(line.split(":", 1)[1].strip()).name.lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    runtime = {Requirement(d).name.lower() for d in _pyproject()["project"]["dependencies"]}
    assert requires == runtime
    assert "hashviz = hashviz.cli:main" in entry_points
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HASHVIZ_HOME": str(tmp_path / "home")}
    code = ("import json, sys, hashviz; from hashviz.cli import main; "
            "print(json.dumps({'file': hashviz.__file__})); sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, "prepare", "--bits", "16", "--epochs", "1", "--json"], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    first, rest = out.stdout.split("\n", 1)
    assert Path(json.loads(first)["file"]).resolve().is_relative_to(site.resolve())
    result = json.loads(rest)
    assert result["runs"][0]["n_bits"] == 16 and result["runs"][0]["map"]["sign"] > 0.5
