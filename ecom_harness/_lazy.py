"""Lazy exports (PEP 562) for the packages' ``__init__`` modules.

A package lists ``name -> submodule`` once; a name's module is imported on first use, so
``ecom-harness --help`` or ``specs lint`` pays only for what it touches (SQLAlchemy,
aiokafka and uvicorn are hundreds of milliseconds). Type checkers see the same names
through the package's ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, resolving each exported name
    from its submodule (relative to the package) on first access, then caching it in the
    package so later lookups are plain attribute reads."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
