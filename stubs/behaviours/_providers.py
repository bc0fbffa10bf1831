"""What the simulators of the external providers (Stripe, SendGrid, Twilio) share.

The providers answer in their own wire formats, not problem+json, so each one renders
the engine's validation errors itself; :func:`field_errors` turns the engine's
violations into structured data once, so each renderer only decides the wording.
Stripe's idempotent replay and the "what was sent" log of SendGrid and Twilio live here
too, so each simulator module holds only what its provider does differently.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar

import orjson
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ecom_harness.stubs.engine import Problem
from ecom_harness.stubs.state import Database, Write, insert_into

from ._idempotency import KeyRetention, as_utc, fingerprint
from ._simulator import Simulator

__all__ = [
    "Conflict",
    "FieldError",
    "IdempotencyStore",
    "MessagingSimulator",
    "Replay",
    "as_utc",
    "basic_credentials",
    "bearer_token",
    "field_errors",
    "fingerprint",
    "idempotency_table",
    "sent_messages_table",
]


# --- the engine's violations, as data ---------------------------------------------------

_REQUIRED = re.compile(r'^(".*") is a required property$')
_UNKNOWN = re.compile(r"^Additional properties are not allowed \((.*) (?:was|were) unexpected\)$")
_WRONG_TYPE = re.compile(r'is not of type "(\w+)"$')
_MISSING_PARAMETER = re.compile(r"^required \w+ parameter '.*' is missing$")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One violation of a request: where (``location`` and the ``path`` inside it), what
    kind (``missing``, ``unknown``, ``type`` or ``invalid``) and the engine's wording."""

    location: str  # body | header | path | query
    path: tuple[str, ...]
    kind: str
    message: str
    expected: str | None = None  # the JSON type wanted, for kind "type"


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _parse_violation(pointer: str, message: str) -> list[FieldError]:
    location, *path = [_unescape(t) for t in pointer.split("/")[1:]] or ["body"]
    where = tuple(path)
    if required := _REQUIRED.match(message):
        return [FieldError(location, (*where, str(orjson.loads(required[1]))), "missing", message)]
    if unknown := _UNKNOWN.match(message):
        names = re.findall(r"'([^']*)'", unknown[1])
        return [FieldError(location, (*where, name), "unknown", message) for name in names]
    if _MISSING_PARAMETER.match(message) or message == "a request body is required":
        return [FieldError(location, where, "missing", message)]
    if wrong_type := _WRONG_TYPE.search(message):
        return [FieldError(location, where, "type", message, wrong_type[1])]
    return [FieldError(location, where, "invalid", message)]


def field_errors(found: Problem) -> list[FieldError]:
    """Each violation the engine reported in a ``validation-error`` problem, in its order
    (empty for every other problem: bad JSON, routing, media type...)."""
    return [
        error
        for violation in found.errors
        for error in _parse_violation(violation["pointer"], violation["message"])
    ]


# --- credentials ---------------------------------------------------------------------


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(user, password)`` of ``Authorization: Basic ...``, or None when absent or garbled."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


# --- idempotent replay (Stripe's Idempotency-Key) ------------------------------------------


def idempotency_table(metadata: MetaData) -> Table:
    """One row per key: which request claimed it, and its stored answer once finished
    (``status`` stays NULL while the first request still runs)."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("key", String(255), primary_key=True),
        Column("endpoint", String(255), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("request_id", String(64), nullable=False),
        Column("status", Integer, nullable=True),
        Column("body", JSON, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored answer of the request that first used a key."""

    status: int
    body: Any
    request_id: str


class Conflict(Enum):
    """Why a key cannot be used for this request."""

    OTHER_ENDPOINT = "other-endpoint"
    OTHER_PARAMETERS = "other-parameters"
    IN_PROGRESS = "in-progress"


class IdempotencyStore:
    """Claims keys for requests and keeps their answers for replay.

    A claim is an INSERT on the key's primary key, so two racing requests cannot both
    run: the loser sees the winner's row (in progress, finished, or for other
    parameters). Keys older than ``ttl`` count as unused, and are pruned, as Stripe
    prunes them (:class:`KeyRetention`: claims delete the expired rows now and then).
    """

    def __init__(self, table: Table, db: Database, clock: Callable[[], datetime], ttl: timedelta):
        self.table, self.db, self.clock, self.ttl = table, db, clock, ttl
        self.retention = KeyRetention(clock, ttl)
        # Built once (see inventory-svc): the statements of every request with a key.
        of_key = table.c.key == bindparam("w_key")
        self._row_of = select(table).where(of_key)
        self._complete = table.update().where(of_key)
        self._forget = table.delete().where(of_key)

    async def claim(
        self, key: str, endpoint: str, digest: str, request_id: str
    ) -> Replay | Conflict | None:
        """None when this request may run (then :meth:`complete` or :meth:`release`)."""
        for _ in range(2):
            try:
                # Two statements, not one transaction: a pruned row needs no claim, and
                # on PostgreSQL a statement alone is one round trip, a block three.
                await self.retention.prune(self.db, self.table.c.created_at)
                claim = {
                    "key": key,
                    "endpoint": endpoint,
                    "fingerprint": digest,
                    "request_id": request_id,
                    "created_at": self.clock(),
                }
                await self.db.execute(insert_into(self.table), claim)
                return None
            except IntegrityError:
                found = await self._existing(key, endpoint, digest)
                if found is not None:
                    return found
        return Conflict.IN_PROGRESS  # pruned and re-claimed by another request meanwhile

    async def _existing(self, key: str, endpoint: str, digest: str) -> Replay | Conflict | None:
        """What the row holding ``key`` means for a new request; None once it expired
        (and was pruned here)."""
        async with self.db.begin() as conn:
            row = (await conn.execute(self._row_of, {"w_key": key})).first()
            if row is None:
                return None
            if as_utc(row.created_at) + self.ttl <= self.clock():
                await conn.execute(self._forget, {"w_key": key})
                return None
        if row.endpoint != endpoint:
            return Conflict.OTHER_ENDPOINT
        if row.status is None:  # the key is busy until its first request ends
            return Conflict.IN_PROGRESS
        if row.fingerprint != digest:
            return Conflict.OTHER_PARAMETERS
        return Replay(row.status, row.body, row.request_id)

    async def complete(
        self, key: str, status: int, body: Any, writes: Sequence[Write] = ()
    ) -> None:
        """Keep the answer for replays, with ``writes`` (what the request did) in one
        transaction: a replay never answers for work that was not kept."""
        answer = {"w_key": key, "status": status, "body": body}
        await self.db.execute_all([*writes, (self._complete, answer)])

    async def release(self, key: str) -> None:
        """Forget the claim: the request stopped before doing anything worth replaying."""
        await self.db.execute(self._forget, {"w_key": key})


# --- what the messaging providers "sent" ---------------------------------------------------


def sent_messages_table(metadata: MetaData) -> Table:
    """Every accepted message of a messaging provider, for tests and the harness to read."""
    return Table(
        "sent_messages",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("message_id", String(64), nullable=False, index=True),
        Column("to", JSON, nullable=False),
        Column("sender", String(320), nullable=True),
        Column("subject", Text, nullable=True),
        Column("template_id", String(64), nullable=True),
        Column("dynamic_template_data", JSON, nullable=True),
        Column("body", Text, nullable=True),
        Column("custom_args", JSON, nullable=True),
        Column("sent_at", DateTime(timezone=True), nullable=False),
    )


class MessagingSimulator(Simulator):
    """Base of the simulators that deliver messages (SendGrid, Twilio): they record
    each accepted message in their ``sent`` table instead of delivering it."""

    sent: ClassVar[Table]

    async def record_sent(self, messages: list[dict[str, Any]]) -> None:
        """Record accepted messages (keys: the columns of :func:`sent_messages_table`,
        with ``from`` for ``sender``); ``sent_at`` defaults to now."""
        now = self.ctx.clock()
        rows = [
            {"sender": m.get("from"), "sent_at": now} | {k: v for k, v in m.items() if k != "from"}
            for m in messages
        ]
        await self.ctx.db.execute(insert_into(self.sent), rows)

    async def sent_messages(self) -> list[dict[str, Any]]:
        """Every message accepted so far, oldest first: ``message_id``, ``to`` (list),
        ``from``, ``subject``, ``template_id``, ``dynamic_template_data``, ``body``,
        ``custom_args`` and ``sent_at`` (aware UTC); what does not apply is None."""
        async with self.ctx.db.connect() as conn:
            rows = (await conn.execute(select(self.sent).order_by(self.sent.c.seq))).mappings()
            return [_message(row) for row in rows]


def _message(row: RowMapping) -> dict[str, Any]:
    found = {str(k): v for k, v in row.items() if k not in ("seq", "sender")}
    return found | {"from": row["sender"], "sent_at": as_utc(row["sent_at"])}
