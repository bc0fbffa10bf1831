"""A plain install and the test extras resolve to the same libraries: the suite tests
what users run."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# jsonschema-rs releases around the ones schemathesis accepts (newest first).
RELEASES = ["0.62.0", "0.61.2", "0.61.0", "0.60.3", "0.60.1", "0.60.0", "0.59.0", "0.58.6"]


def _ours(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return next(r for r in map(Requirement, project["dependencies"]) if r.name == name)


def _schemathesis(name: str) -> Requirement:
    return next(r for r in map(Requirement, requires("schemathesis") or []) if r.name == name)


def test_jsonschema_rs_is_pinned_to_what_schemathesis_accepts() -> None:
    """Without the pin a plain install takes the newest jsonschema-rs, which the test
    extras then downgrade: the suite would not run what users run."""
    ours, theirs = _ours("jsonschema-rs"), _schemathesis("jsonschema-rs")
    accepted = [v for v in RELEASES if Version(v) in ours.specifier]
    assert accepted, f"{ours} accepts none of {RELEASES}"
    assert all(Version(v) in theirs.specifier for v in accepted), (ours, theirs)
    assert Version(version("jsonschema-rs")) in ours.specifier
