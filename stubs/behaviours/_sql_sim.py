"""The base of simulators whose state lives in SQL and whose events leave through the
outbox (inventory-svc, payment-svc, shipping-svc), and the documented refusals they answer with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from sqlalchemy import Select, Table, bindparam, cast, select

from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.state import Connection, OutboxRelay, Write, event_write, make_event

from ._simulator import Simulator, SimulatorContext, health_behaviour, problem_response

__all__ = ["OutboxSimulator", "Refusal", "platform_problem", "refusal", "typed_row"]

# Problem types the two simulators answer: slug -> (status, title as in the specs' examples).
_PROBLEMS: dict[str, tuple[int, str]] = {
    "not-found": (404, "Not Found"),
    "conflict": (409, "Conflict"),
    "out-of-stock": (409, "Out of stock"),
    "validation-error": (422, "Validation failed"),
    "idempotency-key-reused": (422, "Idempotency key reused"),
    "card-declined": (402, "Card declined"),
    "payment-provider-error": (502, "Payment provider error"),
}


class Refusal(Exception):
    """A documented error answer, raised from anywhere in a behaviour.

    Raised inside :meth:`OutboxSimulator.transaction` it also rolls the transaction
    back, so an answer and the state it leaves can never disagree.
    """

    def __init__(self, response: StubResponse):
        super().__init__(f"{response.status}: {response.body}")
        self.response = response


def platform_problem(slug: str, detail: str, instance: str, **extensions: Any) -> StubResponse:
    """The platform problem ``slug``, status and title from :data:`_PROBLEMS`."""
    status, title = _PROBLEMS[slug]
    return problem_response(
        status, slug, title=title, detail=detail, instance=instance, **extensions
    )


def refusal(
    slug: str,
    detail: str,
    req: ValidRequest,
    *,
    instance: str | None = None,
    **extensions: Any,
) -> Refusal:
    """:func:`platform_problem` as a :class:`Refusal`; ``instance`` defaults to the
    request's path."""
    return Refusal(platform_problem(slug, detail, instance or req.request.path, **extensions))


class OutboxSimulator(Simulator):
    """A simulator whose state lives in SQL and whose events leave through the outbox.

    Subclasses set ``component``, ``metadata``, ``outbox`` (``outbox_table(metadata)``)
    and ``topic``, and list their behaviours in :meth:`operations`; a behaviour may
    raise :class:`Refusal` anywhere to answer a documented error.
    """

    topic: ClassVar[str]
    outbox: ClassVar[Table]

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.relay = OutboxRelay(self.outbox, ctx.db, ctx.bus, self.component)

    def operations(self) -> dict[str, Behaviour]:
        """operationId -> behaviour, without ``getHealth`` (the base answers it)."""
        return {}

    def behaviours(self) -> dict[str, Behaviour]:
        answering = {op: self._answering(b) for op, b in self.operations().items()}
        return answering | {"getHealth": health_behaviour(self.component)}

    async def before_each(self) -> None:
        """Runs before every behaviour but ``getHealth`` (lazy housekeeping)."""

    def _answering(self, behaviour: Behaviour) -> Behaviour:
        async def answer(req: ValidRequest) -> StubResponse | None:
            try:
                await self.before_each()
                return await behaviour(req)
            except Refusal as refused:
                return refused.response

        return answer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One transaction on the component's database; the relay is woken after it
        commits, so events written in it go out promptly."""
        async with self.ctx.db.begin() as conn:
            yield conn
        self.relay.wake()

    async def emit(
        self, conn: Connection, event_type: str, order_id: str, data: dict[str, Any]
    ) -> None:
        """Queue an event on this component's topic, keyed by the order id, in ``conn``'s
        transaction."""
        await conn.execute(*self.event(event_type, order_id, data))

    def event(self, event_type: str, order_id: str, data: dict[str, Any]) -> Write:
        """An event on this component's topic, keyed by the order id, as the write of its
        outbox row (for ``Database.execute_all``; wake the relay after)."""
        event = make_event(event_type, self.component, order_id, data, self.ctx.clock())
        return event_write(self.outbox, self.topic, order_id, event)

    async def flush_outbox(self) -> int:
        """Publish every pending event now (tests and scenario steps call it before
        ``bus.drain()``); returns how many were published."""
        return await self.relay.relay_once()

    async def start(self) -> None:
        await super().start()
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await super().stop()


def typed_row(table: Table, names: tuple[str, ...]) -> Select[Any]:
    """A row of parameters named after ``table``'s columns, typed in the SQL (a SELECT's
    parameters have no column to take their type from): what an ``INSERT ... SELECT``
    inserts from another query of the same statement."""
    types = [table.c[name].type for name in names]
    return select(*(cast(bindparam(n, type_=t), t) for n, t in zip(names, types, strict=True)))
