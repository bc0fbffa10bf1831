"""Reading spec files into documents, reporting what cannot be read.

A document is classified by content, not by file name: a mapping with ``openapi`` is an
OpenAPI description, with ``asyncapi`` an AsyncAPI one, with ``components`` and ``edges``
a topology. Everything that goes wrong while reading becomes a :class:`Diagnostic`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ._diagnostics import Diagnostic
from ._yaml import DuplicateKeyError, YamlError, load_yaml

__all__ = ["Document", "DocumentKind", "collect_files", "display_path", "read_document"]

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


class DocumentKind(StrEnum):
    OPENAPI = "openapi"
    ASYNCAPI = "asyncapi"
    TOPOLOGY = "topology"


@dataclass(slots=True)
class Document:
    """One parsed spec file."""

    path: Path
    display: str
    kind: DocumentKind
    data: dict[str, Any]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def problem(self, pointer: str, message: str, rule: str) -> Diagnostic:
        """Record and return a diagnostic about this document."""
        diag = Diagnostic(self.display, pointer, message, rule)
        self.diagnostics.append(diag)
        return diag


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def collect_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand directories to the spec files below them, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()
            )
        else:
            yield path


def _classify(data: dict[str, Any]) -> DocumentKind | None:
    if "openapi" in data:
        return DocumentKind.OPENAPI
    if "asyncapi" in data:
        return DocumentKind.ASYNCAPI
    if "components" in data and "edges" in data:
        return DocumentKind.TOPOLOGY
    return None


def read_document(  # noqa: PLR0911 - one return per way a file can be unusable
    path: Path, display: str | None = None
) -> Document | Diagnostic:
    """Read and classify one file; a file that cannot be used yields one diagnostic."""
    shown = display or display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Diagnostic(shown, "", "no such file", "read")
    except IsADirectoryError:
        return Diagnostic(shown, "", "is a directory, not a spec file", "read")
    except UnicodeDecodeError as exc:
        return Diagnostic(shown, "", f"not UTF-8 text (byte {exc.start})", "read")
    except OSError as exc:
        return Diagnostic(shown, "", f"cannot read: {exc.strerror}", "read")
    try:
        data = load_yaml(text)
    except YamlError as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
        rule = "yaml-duplicate-key" if isinstance(exc, DuplicateKeyError) else "yaml"
        return Diagnostic(shown, "", f"{where}{exc}", rule)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        return Diagnostic(shown, "", f"expected a mapping at the top level, found {found}", "yaml")
    kind = _classify(data)
    if kind is None:
        return Diagnostic(
            shown,
            "",
            "not an OpenAPI, AsyncAPI or topology document "
            "(no 'openapi', 'asyncapi' or 'components'+'edges' key)",
            "kind",
        )
    return Document(path=path, display=shown, kind=kind, data=data)
