"""The shipped specs by component name, and an OpenAPI document compiled for serving.

Every consumer of a component's spec (the stub host, the mesh's proxies, the exporters)
finds it here, so "which file is order-svc's spec" has one answer.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ._documents import Document, DocumentKind, read_document
from ._locate import spec_root
from ._operations import Api

__all__ = ["SpecNotFound", "load_api", "shipped_components", "shipped_spec"]


class SpecNotFound(LookupError):
    """No shipped spec for that component name."""


def shipped_components() -> list[str]:
    """Every component with a shipped OpenAPI document, internal ones first."""
    root = spec_root() / "openapi"
    internal = sorted(p.stem for p in root.glob("*.yaml"))
    external = sorted(p.stem for p in (root / "external").glob("*.yaml"))
    return internal + external


def shipped_spec(component: str) -> Path:
    """The shipped OpenAPI document of a component (internal or external provider)."""
    for candidate in (f"openapi/{component}.yaml", f"openapi/external/{component}.yaml"):
        path = spec_root() / candidate
        if path.is_file():
            return path
    known = ", ".join(shipped_components())
    raise SpecNotFound(f"unknown component '{component}' (known: {known})")


def load_api(path: Path) -> Api:
    """Compile an OpenAPI document; refuse anything else with a clear message.

    A compiled document is shared by everyone who loads the same unchanged file in this
    process (the mesh's proxies and its stub hosts, two meshes side by side): it is
    read-only once built, and its schema validators, compiled on first use, are then
    compiled once. An edited file (another modification time or size) is read again.
    """
    stat = path.stat() if path.is_file() else None
    if stat is None:
        return _compile(path)
    # the working directory too: the document's display path is relative to it
    return _compile_unchanged(path, os.getcwd(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _compile_unchanged(path: Path, _cwd: str, _mtime_ns: int, _size: int) -> Api:
    return _compile(path)


def _compile(path: Path) -> Api:
    doc = read_document(path)
    if not isinstance(doc, Document):
        raise ValueError(str(doc))
    if doc.kind is not DocumentKind.OPENAPI:
        raise ValueError(f"{doc.display}: not an OpenAPI document ({doc.kind.value})")
    return Api(doc)
