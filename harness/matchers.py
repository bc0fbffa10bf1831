"""Matching observed values against what a scenario expects.

A value in a scenario's ``body``, ``headers``, ``request``, ``response`` or ``data`` is
either a literal (equal after placeholders are filled; a number equals the same number,
a string compares as written) or a matcher, a mapping with exactly one of these keys:

============  =====================================================================
``equals``    equal to this value (for expecting a literal mapping)
``present``   ``true``: there is a value (null included); ``false``: there is none
``matches``   a string matching this regular expression (``re.search``)
``one_of``    equal to one of these values
``not``       not equal to this value
``min/max``   a number at least / at most this
``length``    a list, string or mapping of exactly this length
``each``      a list whose every item matches ``{pointer: value or matcher}``
``contains``  a list with at least one item matching ``{pointer: value or matcher}``
============  =====================================================================

Fields are addressed by JSON pointer (``/items/0/sku``; ``""`` for the whole value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ecom_harness.specs import PointerError, resolve_pointer

__all__ = ["MATCHER_KEYS", "MISSING", "field_mismatches", "is_matcher", "mismatch", "show"]

MATCHER_KEYS = frozenset(
    {"equals", "present", "matches", "one_of", "not", "min", "max", "length", "each", "contains"}
)


class _Missing:
    def __repr__(self) -> str:
        return "(nothing)"


MISSING: Any = _Missing()


def is_matcher(expected: Any) -> bool:
    return (
        isinstance(expected, dict) and len(expected) == 1 and next(iter(expected)) in MATCHER_KEYS
    )


def show(value: Any) -> str:
    """A value as a short, readable string for reports."""
    if value is MISSING:
        return "(nothing)"
    text = repr(value) if isinstance(value, str) else _json(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _json(value: Any) -> str:
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual if isinstance(expected, bool) else expected == actual
    if isinstance(expected, int | float) and isinstance(actual, str):
        return str(expected) == actual  # headers are text: Retry-After: 1 equals 1
    return bool(expected == actual)


def mismatch(expected: Any, actual: Any) -> str | None:  # noqa: PLR0911, PLR0912
    """None when ``actual`` satisfies ``expected`` (a literal or a matcher), else why not."""
    if not is_matcher(expected):
        if actual is MISSING:
            return f"expected {show(expected)}, found nothing"
        return (
            None if _equal(expected, actual) else f"expected {show(expected)}, found {show(actual)}"
        )
    ((key, wanted),) = expected.items()
    if key == "present":
        there = actual is not MISSING
        return (
            None
            if there == bool(wanted)
            else ("missing" if wanted else f"unexpected {show(actual)}")
        )
    if actual is MISSING:
        return f"expected a value ({key} {show(wanted)}), found nothing"
    if key == "equals":
        return mismatch(wanted, actual) if not is_matcher(wanted) else None
    if key == "matches":
        ok = isinstance(actual, str) and re.search(str(wanted), actual) is not None
        return None if ok else f"expected text matching {wanted!r}, found {show(actual)}"
    if key == "one_of":
        ok = any(_equal(w, actual) for w in wanted)
        return None if ok else f"expected one of {show(wanted)}, found {show(actual)}"
    if key == "not":
        return None if not _equal(wanted, actual) else f"expected anything but {show(wanted)}"
    if key in ("min", "max"):
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return f"expected a number, found {show(actual)}"
        ok = number >= float(wanted) if key == "min" else number <= float(wanted)
        word = "at least" if key == "min" else "at most"
        return None if ok else f"expected {word} {wanted}, found {show(actual)}"
    if key == "length":
        ok = isinstance(actual, list | str | dict) and len(actual) == wanted
        return None if ok else f"expected length {wanted}, found {show(actual)}"
    if not isinstance(actual, list):
        return f"expected a list, found {show(actual)}"
    if key == "each":
        for index, item in enumerate(actual):
            found = field_mismatches(wanted, item)
            if found:
                return f"item {index}: {found[0]}"
        return None
    # contains
    if any(not field_mismatches(wanted, item) for item in actual):
        return None
    return f"no item matches {show(wanted)} among {len(actual)}"


def lookup(document: Any, pointer: str) -> Any:
    if pointer == "":
        return document
    try:
        return resolve_pointer(document, pointer)
    except (PointerError, KeyError, IndexError, TypeError, ValueError):
        return MISSING


def field_mismatches(fields: Mapping[str, Any], document: Any) -> list[str]:
    """``"POINTER: why"`` for each field of ``document`` that does not match."""
    found = []
    for pointer, expected in fields.items():
        problem = mismatch(expected, lookup(document, pointer))
        if problem:
            found.append(f"{pointer or '/'}: {problem}")
    return found
