"""The code base keeps its own rules: typed, linted, and layered one way only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_mypy_strict_is_clean(package_tree: Path) -> None:
    result = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            "-p",
            "ecom_harness",
        ],
        cwd=package_tree,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    lint = _run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=REPO)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_layers_depend_one_way(package_tree: Path) -> None:
    """cli -> harness -> stubs -> specs, and only the CLI imports Click (import-linter
    contracts)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = _run(
        [str(lint_imports), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=package_tree,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


# Import-linter's wildcards replace whole module names only, so "any ``_``-prefixed module of
# another package" is checked on its import graph (grimp, import-linter's own) directly.
_PRIVATE_IMPORTS = """
import json
import grimp

graph = grimp.build_graph("ecom_harness", cache_dir=None)
found = []
for importer in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(importer)):
        parts = imported.split(".")
        if parts[0] != "ecom_harness" or importer.split(".")[1:2] == parts[1:2]:
            continue  # another project's module, or one of the importer's own package
        if any(part.startswith("_") for part in parts[2:]):
            found.append(importer + " -> " + imported)
print(json.dumps(found))
"""


def test_no_package_imports_another_package_s_private_modules(package_tree: Path) -> None:
    """specs, stubs, harness and cli reach each other only through public ``__init__``s."""
    result = subprocess.run(
        [sys.executable, "-c", _PRIVATE_IMPORTS],
        cwd=package_tree,
        env={"PYTHONPATH": str(package_tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
