"""Parsed YAML kept on disk between processes, as Python keeps bytecode.

Every command that reads the specs parses them again: the shipped ones are 20,000 lines
(a tenth of a second of YAML parsing before ``run`` starts its first mesh, a quarter of
``specs lint``). A document that parsed cleanly is stored as JSON, named by a hash of
its text and of this module's :data:`FORMAT`, so a stored entry can only ever stand for
that exact text parsed by these rules: an edited file, or a change to the strict loader
(bump :data:`FORMAT`), misses and is parsed again. Only documents that fail nothing are
stored; errors always come from the parser, with their line and column. Data JSON
cannot hold exactly (a NaN, an integer beyond 64 bits) is never stored.

Where: ``$ECOM_HARNESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ecom-harness/yaml``, else
``~/.cache/ecom-harness/yaml``; ``ECOM_HARNESS_CACHE_DIR=off`` turns it off. A cache
that cannot be read or written is simply not used. Small documents (scenario files) are
parsed faster than a file is opened, so only those over :data:`MIN_CHARS` are stored,
and the folder is trimmed to the newest :data:`KEEP` entries when it grows past twice that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

__all__ = ["FORMAT", "cache_dir", "cached_parse"]

FORMAT = "strict-yaml-1"  # bump when what a text parses to changes
MIN_CHARS = 8_000
KEEP = 200


def cache_dir() -> Path | None:
    """Where parsed documents are kept, or None when the cache is off."""
    chosen = os.environ.get("ECOM_HARNESS_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ecom-harness" / "yaml"


def cached_parse(text: str, parse: Callable[[str], Any]) -> Any:
    """``parse(text)``, or what it gave before for this very text."""
    folder = cache_dir() if len(text) >= MIN_CHARS else None
    if folder is None:
        return parse(text)
    digest = hashlib.blake2b(f"{FORMAT}\0{text}".encode(), digest_size=20).hexdigest()
    entry = folder / f"{digest}.json"
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        return orjson.loads(entry.read_bytes())
    data = parse(text)  # its errors go to the caller; nothing is stored for them
    _store(folder, entry, data)
    return data


def _store(folder: Path, entry: Path, data: Any) -> None:
    try:
        raw = orjson.dumps(data)
    except TypeError:  # an integer beyond 64 bits
        return
    if orjson.loads(raw) != data:  # NaN or infinity (JSON null), a float that changed
        return
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(raw)
        os.replace(temporary, entry)  # whole or not at all, for a reader beside us
        _trim(folder)


def _trim(folder: Path) -> None:
    entries = list(folder.glob("*.json"))
    if len(entries) <= 2 * KEEP:
        return
    entries.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
