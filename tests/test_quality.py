"""The code base keeps its own rules: typed, linted, and layered one way only."""

from __future__ import annotations

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
    """cli -> harness -> stubs, and only the CLI imports Click (import-linter contracts)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = _run(
        [str(lint_imports), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=package_tree,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout
