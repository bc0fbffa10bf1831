"""Stable stand-ins for the values a run makes up, so generated pacts are byte-identical.

Simulators make ids (``ord_5KvOGBjdSG6z``), timestamps, hashes and secrets afresh on
every run; a pact holding them would change with every ``contracts generate``. Each such
value is replaced by a canonical one of the same shape, numbered in the order the
generator walks the (sorted) pacts: the same original value gets the same stand-in
everywhere, so an order id answered by one provider and sent to another stays one id.
The pact's matchers, not these examples, say what a real provider may answer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

__all__ = ["CANONICAL_TIME", "Canonicalizer", "is_dynamic", "mask"]

CANONICAL_TIME = "2025-01-01T00:00:00Z"
CANONICAL_DATE = "Wed, 01 Jan 2025 00:00:00 +0000"  # the same instant, as RFC 2822 says it
CANONICAL_DAY = "2025-01-01"  # and its calendar day
CANONICAL_EPOCH = 1735689600

# An id as the platform, Stripe and Twilio make them (prefix_ + random), a long hex run
# (hashes, Twilio SIDs), a long digit run (tracking numbers), an RFC 3339 time, an
# RFC 2822 date (Twilio's ``date_created``: "Sun, 29 Nov 2026 23:47:32 +0000"), a
# calendar day near the run's (a delivery estimate: today plus a few working days, so a
# pact holding it would change every day; a day far from it -- Twilio's API version
# 2010-04-01 -- is a constant, kept).
_ID = r"\b[a-z]{2,4}_(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{8,40}\b"
_HEX = r"(?<![A-Za-z0-9])(?:SM|AC)?[0-9a-f]{24,64}(?![A-Za-z0-9])"
_DIGITS = r"(?<![0-9A-Za-z])[0-9]{14,30}(?![0-9A-Za-z])"
_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})"
_DATE = (
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)
_DAY = r"(?<![0-9/-])\d{4}-\d{2}-\d{2}(?![0-9T/:-])"
_RECENT_DAYS = 400  # a day this close to the run's is one the run made up
_EPOCH_TEXT = r"(?<![0-9])1[0-9]{9}(?![0-9])"  # epoch seconds inside text (?t=1795986177)
_DYNAMIC = re.compile(
    f"(?P<time>{_TIME})|(?P<date>{_DATE})|(?P<day>{_DAY})|(?P<id>{_ID})|(?P<hex>{_HEX})"
    f"|(?P<digits>{_DIGITS})|(?P<epoch>{_EPOCH_TEXT})"
)
_REDACTED = "[redacted]"
# Epoch seconds (iat, exp, Stripe's `created`) between 2001 and 2286.
_EPOCH = range(1_000_000_000, 10_000_000_000)


def _made_up(found: re.Match[str]) -> bool:
    """Whether a match is a made-up part: all are, but a calendar day far from today."""
    if found.lastgroup != "day":
        return True
    try:
        day = date.fromisoformat(found.group(0))
    except ValueError:
        return False
    return abs((day - date.today()).days) <= _RECENT_DAYS


def is_dynamic(value: Any) -> bool:
    """Whether a value is one a run makes up (so a pact must match it by shape)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in _EPOCH
    return isinstance(value, str) and (
        value == _REDACTED or any(map(_made_up, _DYNAMIC.finditer(value)))
    )


def mask(value: Any) -> Any:
    """The value with every made-up part reduced to its kind: for comparing runs."""
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value in _EPOCH:
        return CANONICAL_EPOCH
    if isinstance(value, str):
        return _DYNAMIC.sub(lambda m: f"<{m.lastgroup}>" if _made_up(m) else m.group(0), value)
    return value


class Canonicalizer:
    """Replaces made-up values consistently; call it in a deterministic order."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def token(self, original: str, kind: str) -> str:
        found = self._seen.get(original)
        if found is not None:
            return found
        if kind == "time":  # all times are one: no count, so no timing can shift a number
            return CANONICAL_TIME
        if kind == "date":
            return CANONICAL_DATE
        if kind == "day":
            return CANONICAL_DAY
        if kind == "epoch":
            return str(CANONICAL_EPOCH)
        # One count per kind of value (per id prefix): a value of another kind seen once
        # more or less in a run shifts no number here.
        prefix, _, rest = original.partition("_") if kind == "id" else (kind, "", original)
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        number = str(self._counts[prefix])
        if kind == "id":
            found = f"{prefix}_{number.zfill(len(rest))}"
        elif kind == "hex":
            head = original[:2] if original[:2] in ("SM", "AC") else ""
            found = head + number.zfill(len(original) - len(head))
        else:
            found = number.zfill(len(original))
        self._seen[original] = found
        return found

    def string(self, value: str) -> str:
        def replace(found: re.Match[str]) -> str:
            if not _made_up(found):
                return found.group(0)
            return self.token(found.group(0), found.lastgroup or "")

        return _DYNAMIC.sub(replace, value)

    def value(self, value: Any) -> Any:
        """Canonical form of a JSON value (keys walked in sorted order)."""
        if isinstance(value, dict):
            return {k: self.value(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and value in _EPOCH:
            return CANONICAL_EPOCH
        if isinstance(value, str):
            return self.string(value)
        return value
