"""Problem details (RFC 9457) from a catalogue of templates.

Errors are plain data until the ASGI edge serialises them, so every stage can produce one
without knowing about HTTP bodies; each kind of problem is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "problem"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://errors.example.com/ecom/"

_CATALOGUE: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Missing or invalid credentials"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed"),
    "bad-request": (400, "Malformed request"),
    "validation-error": (422, "The request breaks the API contract"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "payload-too-large": (413, "Request body too large"),
    "not-acceptable": (406, "No response matches the Prefer header"),
    "stub-contract-violation": (500, "The stub's response breaks its own spec"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """An error response before serialisation; ``errors`` lists ``{pointer, message}``."""

    slug: str
    status: int
    title: str
    detail: str
    errors: tuple[dict[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, instance: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            data["errors"] = list(self.errors)
        return data


def problem(
    slug: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Problem:
    """A problem of a catalogued kind."""
    status, title = _CATALOGUE[slug]
    return Problem(slug, status, title, detail, tuple(errors or ()), dict(headers or {}))
