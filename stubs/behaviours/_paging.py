"""Page cursors: opaque to clients (base64url of a small JSON object, the form of the
catalog spec's own ``next_cursor`` example), checked on the way back in so a forged or
stale cursor is a documented 422 rather than a crash.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select

from ecom_harness.stubs.engine import StubResponse, ValidRequest

from ._simulator import problem_response

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "decode_cursor",
    "encode_cursor",
    "invalid_cursor",
    "keyset_page",
    "page_of",
]

DEFAULT_PAGE_SIZE = 20  # specs/CONVENTIONS.md: limit 1-100, default 20
_T = TypeVar("_T")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(position: Mapping[str, Any]) -> str:
    """An opaque cursor for ``position`` (``{"sku": "SKU-2042"}`` -> ``eyJza3Ui...``)."""
    return _b64url(orjson.dumps(dict(position)))


def decode_cursor(cursor: str, field: str, kind: type[_T]) -> _T | None:
    """``position[field]`` of a cursor this service issued, or None when it is not one."""
    try:
        position = orjson.loads(_b64url_decode(cursor))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    value = position.get(field) if isinstance(position, dict) else None
    # bool is an int: refuse it explicitly so {"seq": true} is not position 1
    if not isinstance(value, kind) or isinstance(value, bool):
        return None
    return value


def page_of(
    rows: Sequence[_T], limit: int, position: Callable[[_T], Mapping[str, Any]]
) -> tuple[Sequence[_T], str | None]:
    """A page from ``limit + 1`` fetched rows: the first ``limit`` and the cursor after
    them, or None when the extra row shows there is nothing more."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(position(kept[-1]))


def invalid_cursor(req: ValidRequest) -> StubResponse:
    """The documented 422 for a cursor that this service did not issue."""
    return problem_response(
        422,
        "validation-error",
        title="Validation Error",
        detail="The query parameter cursor is not a cursor from a previous page.",
        instance=req.request.path,
        errors=[{"pointer": "/query/cursor", "message": "unknown or malformed cursor"}],
    )


def keyset_page(
    req: ValidRequest,
    statement: Select[Any],
    key: ColumnElement[_T],
    kind: type[_T],
    *,
    newest_first: bool,
) -> tuple[Select[Any], int] | None:
    """``statement`` as one page of a keyset-paged list, and the page's ``limit``.

    Ordered by ``key`` (descending with ``newest_first``), it fetches ``limit + 1`` rows
    (so :func:`page_of` can tell whether more follow) and continues after the request's
    ``cursor``, whose position names the column (``{"seq": 41}``). None when the cursor
    is not one this service issued: answer :func:`invalid_cursor`.
    """
    query = req.params["query"]
    limit = int(query.get("limit", DEFAULT_PAGE_SIZE))
    statement = statement.order_by(key.desc() if newest_first else key).limit(limit + 1)
    if "cursor" in query:
        position = decode_cursor(query["cursor"], str(key.key), kind)
        if position is None:
            return None
        statement = statement.where(key < position if newest_first else key > position)
    return statement, limit
