"""Reading a saved journal (JSON Lines, as ``up --journal`` and ``run --journal`` write it)
for a report, with one precise line for whatever is wrong in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["JournalFileError", "read_journal"]

_REQUIRED = {
    "http": ("seq", "caller", "callee", "method", "path"),
    "event": ("seq", "publisher", "topic"),
}


class JournalFileError(ValueError):
    """The file is not a journal; the message names the file and line."""


def _entry(path: Path, number: int, line: bytes) -> dict[str, Any]:
    where = f"{path}:{number}"
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise JournalFileError(f"{where}: not JSON ({exc})") from None
    if not isinstance(entry, dict):
        raise JournalFileError(f"{where}: a journal entry is a JSON object")
    kind = entry.get("kind")
    if kind not in _REQUIRED:
        raise JournalFileError(f"{where}: 'kind' is {kind!r}, not 'http' or 'event'")
    missing = [key for key in _REQUIRED[kind] if key not in entry]
    if missing:
        raise JournalFileError(f"{where}: an {kind} entry without {', '.join(missing)}")
    if not isinstance(entry["seq"], int):
        raise JournalFileError(f"{where}: 'seq' is not a whole number")
    return entry


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The entries of the journal at ``path``, in file order."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise JournalFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return [
        _entry(path, number, line)
        for number, line in enumerate(raw.splitlines(), start=1)
        if line.strip()
    ]
