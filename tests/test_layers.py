"""Dependency direction, read from the source (ast) of every module, lazy imports inside functions included.

The stages of the data flow import only what lies below them (docs/design.md, "Package and layers"): data/ knows
nothing of the embeddings bundle, heads/ nothing of retrieval, the configs nothing of the store; no module imports
another unit's private names; only hashviz/ui imports streamlit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hashviz"

# Rank of each unit (a top-level module or subpackage of hashviz). A unit may import its own modules and units of a
# strictly lower rank; the orchestration units (rank ORCHESTRATION) may also import each other.
FOUNDATION = ("hashviz", "validate", "fileio", "jsonable", "npyio", "paths", "defaults", "progress")
ORCHESTRATION = 6
RANKS = {
    "errors": 0,
    **dict.fromkeys(FOUNDATION, 0.5),
    "data": 1, "codes": 1, "config": 1, "store": 1,
    "features": 2, "heads": 2, "retrieval": 2,
    "embeddings": 3, "quantize": 3,
    "teach": 4,
    "viz": 5,
    **dict.fromkeys(("evaluate", "pipeline", "catalog", "results", "results_render", "penalty", "session", "cli",
                     "__main__"), ORCHESTRATION),
    "ui": 7,
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hashviz"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """(target module, imported names, line) of every absolute hashviz import in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "hashviz":
                    yield a.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "hashviz":
                yield node.module, tuple(a.name for a in node.names), node.lineno


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_rank():
    units = {_unit(_module_name(p)) for p in SOURCES}
    assert units <= set(RANKS), f"give these units a rank in tests/test_layers.py: {sorted(units - set(RANKS))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_lower_stages_never_import_higher_ones(path):
    src = _unit(_module_name(path))
    bad = []
    for target, names, line in _imports(path):
        # `from hashviz import x` imports the unit x
        units = [_unit(f"hashviz.{n}") for n in names] if target == "hashviz" and names else [_unit(target)]
        for dst in units:
            if dst == src or dst not in RANKS:
                continue
            same_top = RANKS[src] == RANKS[dst] == ORCHESTRATION
            if not (RANKS[dst] < RANKS[src] or same_top):
                bad.append(f"line {line}: {src} (rank {RANKS[src]}) imports {target} (rank {RANKS[dst]})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_from_another_unit(path):
    src = _unit(_module_name(path))
    bad = [f"line {line}: from {target} import {n}" for target, names, line in _imports(path)
           for n in names if n.startswith("_") and not n.startswith("__") and _unit(target) != src]
    assert not bad, "\n".join(bad)


def test_the_named_rules_of_issue_11():
    """The three directions the issue names, spelled out (the rank table above implies them)."""
    def targets(folder_or_file: str) -> set[str]:
        base = PACKAGE / folder_or_file
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        return {t for f in files for t, _, _ in _imports(f)}

    assert not {t for t in targets("data") if t == "hashviz.embeddings"}
    assert not {t for t in targets("heads") if t.startswith("hashviz.retrieval")}
    assert not {t for t in targets("config.py") if t.startswith("hashviz.store")}


def test_only_the_ui_imports_streamlit():
    found = []
    for path in [*SOURCES, *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        in_ui = path.is_relative_to(PACKAGE / "ui") or not path.is_relative_to(PACKAGE)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m.split(".")[0] == "streamlit" for m in mods) and not in_ui:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


@pytest.mark.parametrize("path", [*sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_import_only_streamlit_the_ui_and_the_standard_library(path):
    import sys

    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for m in mods:
            top = m.split(".")[0]
            ok = top == "streamlit" or m == "hashviz.ui" or m.startswith("hashviz.ui.") or top == "__future__" \
                or top in sys.stdlib_module_names
            if not ok:
                bad.append(f"line {node.lineno}: {m}")
    assert not bad, "\n".join(bad)


def test_every_ui_module_imports_streamlit():
    missing = []
    for path in sorted((PACKAGE / "ui").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + \
            [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        if not any(m.split(".")[0] == "streamlit" for m in mods):
            missing.append(path.name)
    assert not missing, missing
