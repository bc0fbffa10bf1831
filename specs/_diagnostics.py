"""Diagnostics: the one shape every check reports a problem in.

A diagnostic names the file, the JSON pointer inside it and a plain message, so a reader
can go straight to the spot; checks collect them instead of raising, so one run reports
every problem at once (as Prism collects validation results as diagnostics).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Diagnostic",
    "escape_token",
    "join_pointer",
    "pointer_from_path",
]


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem in one document: ``file`` + RFC 6901 ``pointer`` + ``message``."""

    file: str
    pointer: str
    message: str
    rule: str = "spec"
    severity: str = "error"  # or "warn", as a lint config sets it

    def __str__(self) -> str:
        warning = "warning: " if self.severity == "warn" else ""
        return f"{self.file}#{self.pointer}: {warning}{self.message} [{self.rule}]"


def escape_token(token: object) -> str:
    """Escape one reference token as RFC 6901 requires (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, *tokens: object) -> str:
    """Append reference tokens to a JSON pointer."""
    return base + "".join("/" + escape_token(t) for t in tokens)


def pointer_from_path(path: Iterable[object]) -> str:
    """Build a JSON pointer from a sequence of keys and indexes (as validators report them)."""
    return join_pointer("", *path)
