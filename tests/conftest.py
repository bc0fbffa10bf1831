"""Shared fixtures."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def package_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shaped like the installed package (``ecom_harness/stubs/...``), made of
    symlinks into the repo, built from the ``package-dir`` mapping in pyproject.toml.

    Tools that walk the file system instead of importing (mypy, import-linter's grimp)
    cannot follow setuptools' editable finder; this tree shows them the real layout.
    """
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    root = tmp_path_factory.mktemp("package-tree")
    for package, folder in sorted(mapping.items()):
        target = root.joinpath(*package.split("."))
        target.parent.mkdir(parents=True, exist_ok=True)
        if package == "ecom_harness":
            target.mkdir(exist_ok=True)
            for item in (REPO / folder).iterdir():
                (target / item.name).symlink_to(item)
        else:
            target.symlink_to(REPO / folder, target_is_directory=True)
    return root


@pytest.fixture
def spec_copy(tmp_path: Path) -> Iterator[Path]:
    """A writable copy of the shipped specs, for tests that break one thing in it."""
    target = tmp_path / "specs"
    shutil.copytree(REPO / "specs", target, ignore=shutil.ignore_patterns("*.py", "*.md"))
    yield target
