"""inventory-svc: stock levels and reservations (specs/openapi/inventory-svc.yaml).

State: ``stock`` (one row per SKU: ``on_hand``, ``reserved``) and ``reservations`` in
inventory-svc's own database. A reservation takes its units with one conditional UPDATE
per SKU, ``reserved = reserved + q WHERE on_hand - reserved >= q``, inside one
transaction that rolls back unless every SKU got its units: of two concurrent orders
for the last unit exactly one wins, on SQLite and on PostgreSQL alike (the database
arbitrates, not a check-then-write in Python).

Lifecycle moves (HELD -> COMMITTED / RELEASED / EXPIRED, COMMITTED -> RELEASED) are
conditional UPDATEs on the status too, so a concurrent release and commit cannot both
move the units. A HELD reservation past ``expires_at`` is expired lazily: every call
first sweeps what is due by ``ctx.clock`` (and :meth:`InventorySimulator.expire_due`
does it on demand), giving the units back and publishing ``inventory.released`` with
reason ``expired``.

Releasing by order id (``releaseOrderReservation``, for a caller that never learnt
whether its reserve was done) releases the order's reservation, or, when none was made
yet, records one as ``RELEASED`` holding nothing (no items: a *tombstone*). The order id
is unique among reservations, so the database decides which of the release and a late
reserve came first: a reserve finding the tombstone holds nothing and answers it
``RELEASED`` (with the items it asked for); a release finding a reservation releases it.

Events (topic ``inventory``, keyed by the order id, through the outbox):
``inventory.reserved``; ``inventory.released`` with the ``reason`` the release call
carried (a ``ReleaseReason``: the failure reason of the order being compensated or
cancelled), or ``expired``.

Settings (``settings["inventory-svc"]``):

``stock`` (the stock of the platform's seed data, ``specs/seed.toml``)
    ``{sku: on_hand}`` seeded at start and again after :meth:`reset`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ecom_harness.specs import load_seed, resolve_pointer
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.state import (
    Connection,
    insert_into,
    modifies_in_with,
    new_id,
    outbox_table,
)

from ._simulator import SeedError, SimulatorContext, add_missing_rows, json_response, rfc3339
from ._sql_sim import OutboxSimulator, Refusal, refusal, typed_row

__all__ = ["InventorySimulator"]

HELD, COMMITTED, RELEASED, EXPIRED = "HELD", "COMMITTED", "RELEASED", "EXPIRED"
_SKU_SCHEMA = "/components/schemas/Sku"
_TTL_DEFAULT = "/components/schemas/ReserveStockRequest/properties/ttl_seconds/default"

# --- inventory-svc ---------------------------------------------------------------------------

_METADATA = MetaData()
STOCK = Table(
    "stock",
    _METADATA,
    Column("sku", String(16), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),
    # A last line of defence: no code path may over-reserve or reserve below zero.
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
)
RESERVATIONS = Table(
    "reservations",
    _METADATA,
    Column("reservation_id", String(40), primary_key=True),
    # one reservation per order: the order id is reserveStock's idempotency key
    Column("order_id", String(40), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("items", JSON, nullable=False),
    # RFC 3339 in UTC, whole seconds: fixed width, so text order is time order.
    Column("expires_at", String(40), nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
    # The sweep before every request looks for HELD reservations that are due. On
    # ``expires_at`` alone it read every reservation past its hold, committed ones
    # included: once a run outlived the 15-minute hold, a growing scan per request
    # (an hour-long load run fell from 31 to 17 orders/s, issue 15).
    Index("ix_reservations_status_expires_at", "status", "expires_at"),
)

# Statements built once (with bind parameters), not per call: building SQLAlchemy's
# expression objects and their cache keys was a fifth of the mesh's loop under load.
_STOCK_ROW = select(STOCK).where(STOCK.c.sku == bindparam("w_sku"))
_STOCKED = select(STOCK.c.sku).where(STOCK.c.sku.in_(bindparam("w_skus", expanding=True)))
_HOLD = (
    update(STOCK)
    .where(
        STOCK.c.sku == bindparam("w_sku"),
        STOCK.c.on_hand - STOCK.c.reserved >= bindparam("w_quantity"),
    )
    .values(reserved=STOCK.c.reserved + bindparam("w_quantity"), updated_at=bindparam("w_now"))
)
_ADJUST = (
    update(STOCK)
    .where(STOCK.c.sku == bindparam("w_sku"))
    .values(
        on_hand=STOCK.c.on_hand + bindparam("w_on_hand"),
        reserved=STOCK.c.reserved + bindparam("w_reserved"),
        updated_at=bindparam("w_now"),
    )
)
_RESERVATION = select(RESERVATIONS).where(
    RESERVATIONS.c.reservation_id == bindparam("w_reservation_id")
)
_RESERVATION_OF = select(RESERVATIONS).where(RESERVATIONS.c.order_id == bindparam("w_order_id"))
_MOVE = (
    update(RESERVATIONS)
    .where(
        RESERVATIONS.c.reservation_id == bindparam("w_reservation_id"),
        RESERVATIONS.c.status == bindparam("w_current"),
    )
    .values(status=bindparam("w_new"))
)
_COMMIT = (
    update(RESERVATIONS)
    .where(
        RESERVATIONS.c.reservation_id == bindparam("w_reservation_id"),
        RESERVATIONS.c.status == HELD,
        RESERVATIONS.c.expires_at > bindparam("w_now"),
    )
    .values(status=COMMITTED)
    .returning(*RESERVATIONS.c)
)
_DUE = (
    select(RESERVATIONS)
    .where(RESERVATIONS.c.status == HELD, RESERVATIONS.c.expires_at <= bindparam("w_now"))
    .order_by(RESERVATIONS.c.expires_at, RESERVATIONS.c.reservation_id)
)
_NEXT_DUE = select(func.min(RESERVATIONS.c.expires_at)).where(RESERVATIONS.c.status == HELD)
_OUTBOX = outbox_table(_METADATA)


def _reserve_in_one() -> Select[Any]:
    """A reservation of one SKU as one statement, for a database that runs
    data-modifying ``WITH`` queries: the conditional hold first, the reservation and
    its event inserted only from the row it held. It returns the reservation's id,
    nothing when the units were short (or the SKU unknown); a reservation the order
    has already fails it on the unique order id, the hold undone with it. One round
    trip where ``BEGIN``, two inserts, the hold and ``COMMIT`` were five (issue 15)."""
    held = _HOLD.returning(STOCK.c.sku).cte("held")
    made_columns = tuple(column.name for column in RESERVATIONS.c)
    made = (
        insert(RESERVATIONS)
        .from_select(made_columns, typed_row(RESERVATIONS, made_columns).select_from(held))
        .returning(RESERVATIONS.c.reservation_id)
        .cte("made")
    )
    event_columns = ("topic", "key", "event", "published")
    queued = insert(_OUTBOX).from_select(
        event_columns, typed_row(_OUTBOX, event_columns).select_from(held)
    )
    return select(made.c.reservation_id).add_cte(queued.cte("queued"))


def _commit_in_one() -> Select[Any]:
    """A commit as one statement, for a database that runs data-modifying ``WITH``
    queries: the conditional move returns the reservation, and its items -- summed per
    SKU from the stored JSON -- take their units out of ``on_hand`` and ``reserved``.
    It returns the committed reservation, nothing when it was not HELD or was due. One
    round trip where ``BEGIN``, the move, a stock update per SKU and ``COMMIT`` were
    four for an order of one SKU (issue 15)."""
    committed = _COMMIT.cte("committed")
    item = func.json_array_elements(committed.c["items"]).table_valued(
        column("value", JSON), joins_implicitly=True
    )
    each = (
        select(
            item.c.value["sku"].as_string().label("sku"),
            item.c.value["quantity"].as_integer().label("quantity"),
        )
        .select_from(committed, item)
        .subquery("each")
    )
    lines = (
        select(each.c.sku, func.sum(each.c.quantity).label("quantity"))
        .group_by(each.c.sku)
        .cte("lines")
    )
    taken = (
        update(STOCK)
        .where(STOCK.c.sku == lines.c.sku)
        .values(
            on_hand=STOCK.c.on_hand - lines.c.quantity,
            reserved=STOCK.c.reserved - lines.c.quantity,
            updated_at=bindparam("w_now"),
        )
    )
    return select(committed).add_cte(taken.cte("taken"))


_RESERVE_IN_ONE = _reserve_in_one()
_COMMIT_IN_ONE = _commit_in_one()
_NEVER = "~"  # sorts after every RFC 3339 time: nothing is due


def _skus_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "sku" and isinstance(value, str):
                yield value
            else:
                yield from _skus_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _skus_in(item)


def _totals(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Units per SKU (a SKU may appear twice in one request), in SKU order: every
    transaction locks stock rows in this order, so none can deadlock another."""
    totals: dict[str, int] = {}
    for item in items:
        totals[item["sku"]] = totals.get(item["sku"], 0) + int(item["quantity"])
    return sorted(totals.items())


async def _order_reservation(conn: Connection, order_id: str) -> Row[Any]:
    return (await conn.execute(_RESERVATION_OF, {"w_order_id": order_id})).one()


def _stock_body(row: Row[Any]) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "on_hand": row.on_hand,
        "reserved": row.reserved,
        "available": row.on_hand - row.reserved,
        "updated_at": row.updated_at,
    }


def _reservation_body(row: Row[Any]) -> dict[str, Any]:
    return {
        "reservation_id": row.reservation_id,
        "order_id": row.order_id,
        "status": row.status,
        "items": row.items,
        "expires_at": row.expires_at,
        "created_at": row.created_at,
    }


class InventorySimulator(OutboxSimulator):
    """Stock per SKU, all-or-nothing reservations with expiry, and their events."""

    component = "inventory-svc"
    topic = "inventory"
    metadata = _METADATA
    outbox = _OUTBOX

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.default_ttl = int(resolve_pointer(ctx.api.document.data, _TTL_DEFAULT))
        self.initial_stock: Mapping[str, int] = ctx.settings.get("stock", load_seed().stock)
        # When the next HELD reservation falls due, as last read (None: not read yet), and
        # the earliest expiry of those made since: see before_each.
        self._next_due: str | None = None
        self._made_since_read = _NEVER
        in_one = modifies_in_with(ctx.db)  # else the transactions below (SQLite)
        self._reserve_in_one = _RESERVE_IN_ONE if in_one else None
        self._commit_in_one = _COMMIT_IN_ONE if in_one else None

    def operations(self) -> dict[str, Behaviour]:
        return {
            "getStock": self.get_stock,
            "setStock": self.set_stock,
            "reserveStock": self.reserve_stock,
            "getReservation": self.get_reservation,
            "releaseReservation": self.release_reservation,
            "releaseOrderReservation": self.release_order_reservation,
            "commitReservation": self.commit_reservation,
        }

    async def start(self) -> None:
        await super().start()
        await self.seed(self.initial_stock)
        await self._seed_history()

    async def reset(self) -> None:
        """Forget every reservation and event; the stock is seeded again."""
        self._next_due = None
        await super().reset()
        await self.seed(self.initial_stock)
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The COMMITTED reservations of the seed data's orders (their units already
        left the stock the seed sets)."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        rows = [
            {
                "reservation_id": order["reservation_id"],
                "order_id": order["order_id"],
                "status": COMMITTED,
                "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]],
                "expires_at": order["updated_at"],
                "created_at": order["created_at"],
            }
            for order in load_seed().orders
        ]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, RESERVATIONS, rows, "reservation_id")

    async def before_each(self) -> None:
        """Sweep when a reservation may be due: not before the earliest expiry of the
        HELD reservations, as read after the last sweep or made since. Looking on every
        request was a round trip of every call (two per order, issue 15); only this
        process writes the database (PostgreSQL's are held by their owner's lock), so
        it knows every reservation it did not read."""
        now = rfc3339(self.ctx.clock())
        if self._next_due is None or now >= min(self._next_due, self._made_since_read):
            await self.expire_due()

    # --- stock ---

    async def seed(self, stock: Mapping[str, int]) -> None:
        """Set ``on_hand`` per SKU (creating unknown SKUs), as ``setStock`` would."""
        if not isinstance(stock, Mapping):
            raise SeedError(
                "", 'inventory-svc\'s seed maps SKUs to units on hand: {"SKU-1001": 40}'
            )
        for sku, on_hand in stock.items():
            where = "/" + str(sku).replace("~", "~0").replace("/", "~1")
            if self.ctx.api.schemas.violations(_SKU_SCHEMA, sku):
                raise SeedError(where, f"{sku!r} is not a SKU (SKU- and 4 to 8 digits)")
            if isinstance(on_hand, bool) or not isinstance(on_hand, int) or on_hand < 0:
                raise SeedError(where, f"units on hand of {sku} must be a whole number >= 0")
        async with self.transaction() as conn:
            for sku, on_hand in sorted(stock.items()):
                row = await self._set_on_hand(conn, sku, on_hand)
                if row.on_hand != on_hand:
                    raise ValueError(f"stock: {sku} has {row.reserved} units reserved")

    async def get_stock(self, req: ValidRequest) -> StubResponse:
        sku = req.params["path"]["sku"]
        async with self.ctx.db.connect() as conn:  # a read: nothing for the relay
            row = await self._stock_row(conn, sku)
        if row is None:
            raise refusal("not-found", f"{sku} is not stocked.", req)
        return json_response(200, _stock_body(row))

    async def set_stock(self, req: ValidRequest) -> StubResponse:
        sku, on_hand = req.params["path"]["sku"], req.body["on_hand"]
        async with self.transaction() as conn:
            row = await self._set_on_hand(conn, sku, on_hand)
        if row.on_hand != on_hand:
            detail = f"{sku} has {row.reserved} units reserved; on_hand cannot be set to {on_hand}."
            raise refusal("conflict", detail, req)
        return json_response(200, _stock_body(row))

    async def _stock_row(self, conn: Connection, sku: str) -> Row[Any] | None:
        return (await conn.execute(_STOCK_ROW, {"w_sku": sku})).first()

    async def _set_on_hand(self, conn: Connection, sku: str, on_hand: int) -> Row[Any]:
        """The SKU's row after setting ``on_hand``; unchanged if that would leave fewer
        units than are reserved."""
        now = rfc3339(self.ctx.clock())
        changed = await conn.execute(
            update(STOCK)
            .where(STOCK.c.sku == sku, STOCK.c.reserved <= on_hand)
            .values(on_hand=on_hand, updated_at=now)
        )
        if changed.rowcount == 0 and await self._stock_row(conn, sku) is None:
            await conn.execute(
                STOCK.insert().values(sku=sku, on_hand=on_hand, reserved=0, updated_at=now)
            )
        row = await self._stock_row(conn, sku)
        assert row is not None
        return row

    async def _adjust(
        self,
        conn: Connection,
        items: list[dict[str, Any]],
        *,
        on_hand: int = 0,
        reserved: int = 0,
    ) -> None:
        """Add ``on_hand`` and ``reserved`` times each item's quantity to its SKU."""
        now = rfc3339(self.ctx.clock())
        for sku, quantity in _totals(items):
            change = {"w_on_hand": on_hand * quantity, "w_reserved": reserved * quantity}
            await conn.execute(_ADJUST, {"w_sku": sku, "w_now": now, **change})

    # --- reserving ---

    async def reserve_stock(self, req: ValidRequest) -> StubResponse:
        """All or nothing: a SKU short of units rolls back the holds already taken.

        An order has one reservation: reserving again for an order that has one answers
        that one as it is now (201, whatever its status), so a caller that timed out can
        send the same request again to learn what the first did, and a first request
        that lands late, after its caller released the order's reservation (by id or by
        order id), holds nothing either."""
        body = req.body
        totals = _totals(body["items"])
        now = self.ctx.clock()
        ttl = int(body.get("ttl_seconds", self.default_ttl))
        reservation = {
            "reservation_id": new_id("res"),
            "order_id": body["order_id"],
            "status": HELD,
            "items": body["items"],
            "expires_at": rfc3339(now + timedelta(seconds=ttl)),
            "created_at": rfc3339(now),
        }
        try:
            return await self._reserve(req, totals, reservation)
        except IntegrityError:  # the order has its reservation (an earlier or a concurrent
            # request made it): that one is the answer
            existing = await self._reservation_of(body["order_id"])
            if existing is None:
                raise
            return await self._as_it_is(existing, body["items"])

    async def _as_it_is(self, existing: Row[Any], items: list[dict[str, Any]]) -> StubResponse:
        """The order's reservation as it is now; a tombstone (released by order id before
        any reservation was made) takes the items asked for, so it reads as a whole
        reservation -- released, holding nothing."""
        if not existing.items:
            await self.ctx.db.execute(
                update(RESERVATIONS)
                .where(RESERVATIONS.c.reservation_id == existing.reservation_id)
                .values(items=items)
            )
            existing = await self._reservation_of(existing.order_id) or existing
        return json_response(201, _reservation_body(existing))

    async def _reservation_of(self, order_id: str) -> Row[Any] | None:
        async with self.ctx.db.connect() as conn:
            return (await conn.execute(_RESERVATION_OF, {"w_order_id": order_id})).first()

    async def _reserve(
        self, req: ValidRequest, totals: list[tuple[str, int]], reservation: dict[str, Any]
    ) -> StubResponse:
        """The reservation and its event are written first and the stock rows last: a
        hold keeps its SKU's row locked until the commit, and every other order of that
        SKU waits for the lock. Held over the two inserts as well, each a round trip to
        the database and a turn of the busy event loop, it made all orders of a SKU
        queue on PostgreSQL (issue 15: in the load run, on its one SKU, about five
        transactions at any moment waited for that lock).

        Nothing is read first: the insert fails on the unique order id when the order
        has a reservation already, and only a SKU that could not be held is looked up
        (unknown, or short of units). Each read was a round trip of every order.

        On PostgreSQL an order of one SKU is one statement (:func:`_reserve_in_one`),
        its lock held for that statement alone; the transaction is SQLite's, that of
        an order of several SKUs, and what says why one statement held nothing."""
        body = req.body
        data = {
            "reservation_id": reservation["reservation_id"],
            "items": body["items"],
            "expires_at": reservation["expires_at"],
        }
        reserved = self.event("inventory.reserved", body["order_id"], data)
        if await self._held_in_one(reservation, totals, reserved[1]):
            return self._made(reservation)
        async with self.transaction() as conn:
            await conn.execute(insert_into(RESERVATIONS), reservation)
            await conn.execute(*reserved)
            short = [(sku, qty) for sku, qty in totals if not await self._hold(conn, sku, qty)]
            if short:  # rolls the reservation and its event back
                await self._require_stocked(conn, [sku for sku, _ in short], req)
                raise await self._out_of_stock(conn, short, req)
        return self._made(reservation)

    def _made(self, reservation: dict[str, Any]) -> StubResponse:
        """The answer for a reservation just committed to the database, which the next
        sweep is due by at the latest."""
        self._made_since_read = min(self._made_since_read, reservation["expires_at"])
        return json_response(201, reservation)

    async def _held_in_one(
        self, reservation: dict[str, Any], totals: list[tuple[str, int]], event: Mapping[str, Any]
    ) -> bool:
        """The reservation made in one statement (see :func:`_reserve_in_one`); False
        when it cannot be (SQLite, several SKUs) or held nothing (short of units, or not
        stocked: the transaction says which), and nothing was written."""
        if self._reserve_in_one is None or len(totals) != 1:
            return False
        [(sku, quantity)] = totals
        hold = {"w_sku": sku, "w_quantity": quantity, "w_now": reservation["created_at"]}
        made = await self.ctx.db.execute(self._reserve_in_one, {**reservation, **event, **hold})
        if made.first() is None:
            return False
        self.relay.wake()
        return True

    async def _hold(self, conn: Connection, sku: str, quantity: int) -> bool:
        """Reserve ``quantity`` units if that many are available; the database decides,
        so concurrent holds on the last units cannot both succeed."""
        now = rfc3339(self.ctx.clock())
        held = await conn.execute(_HOLD, {"w_sku": sku, "w_quantity": quantity, "w_now": now})
        return held.rowcount == 1

    async def _require_stocked(self, conn: Connection, skus: list[str], req: ValidRequest) -> None:
        known = set((await conn.scalars(_STOCKED, {"w_skus": skus})).all())
        unknown = [sku for sku in skus if sku not in known]
        if unknown:
            raise refusal("not-found", f"{', '.join(unknown)} is not stocked.", req)

    async def _out_of_stock(
        self, conn: Connection, short: list[tuple[str, int]], req: ValidRequest
    ) -> Refusal:
        parts = []
        for sku, quantity in short:
            row = await self._stock_row(conn, sku)
            available = 0 if row is None else row.on_hand - row.reserved
            parts.append(f"{sku} (requested {quantity}, available {available})")
        detail = f"Not enough stock for {', '.join(parts)}."
        return refusal("out-of-stock", detail, req, skus=[sku for sku, _ in short])

    # --- the reservation lifecycle ---

    async def get_reservation(self, req: ValidRequest) -> StubResponse:
        async with self.ctx.db.connect() as conn:  # a read: nothing for the relay
            row = await self._reservation(conn, req)
        return json_response(200, _reservation_body(row))

    async def release_reservation(self, req: ValidRequest) -> StubResponse:
        """HELD: frees the reserved units; COMMITTED: puts them back on hand; RELEASED
        and EXPIRED answer unchanged (the units are already back)."""
        async with self.transaction() as conn:
            read = partial(self._reservation, conn, req)
            body = await self._released(conn, read, req.body["reason"])
        return json_response(200, body)

    async def release_order_reservation(self, req: ValidRequest) -> StubResponse:
        """The order's reservation released (200), or, when it has none, a tombstone in
        its place (204) so that none is made later: one insert on the unique order id,
        so a reserve running at the same time either lands first (and is released here)
        or finds the tombstone (and holds nothing)."""
        order_id, reason = req.params["path"]["orderId"], req.body["reason"]
        if await self._reservation_of(order_id) is None:
            now = rfc3339(self.ctx.clock())
            tombstone = {
                "reservation_id": new_id("res"),
                "order_id": order_id,
                "status": RELEASED,
                "items": [],
                "expires_at": now,
                "created_at": now,
            }
            try:
                await self.ctx.db.execute(RESERVATIONS.insert().values(**tombstone))
                return StubResponse(204, None, None)
            except IntegrityError:  # a reservation was made meanwhile: release it below
                pass
        async with self.transaction() as conn:
            body = await self._released(conn, partial(_order_reservation, conn, order_id), reason)
        if not body["items"]:  # a tombstone: nothing was ever held
            return StubResponse(204, None, None)
        return json_response(200, body)

    async def _released(
        self,
        conn: Connection,
        read: Callable[[], Awaitable[Row[Any]]],
        reason: str,
    ) -> dict[str, Any]:
        """Release the reservation ``read`` reads, unless it is released already; its
        body as it is now (not read again after the release: the stock rows it locked
        are written last, see :meth:`_reserve`). Read again and retried when a
        concurrent call moved it first (at most twice)."""
        row = await read()
        while row.status in (HELD, COMMITTED):
            if await self._release(conn, row, reason):
                return {**_reservation_body(row), "status": RELEASED}
            row = await read()
        return _reservation_body(row)

    async def _release(self, conn: Connection, row: Row[Any], reason: str) -> bool:
        """HELD gives the reserved units back, COMMITTED puts them back on hand (the
        stock rows last: see :meth:`_reserve`)."""
        if not await self._move(conn, row.reservation_id, row.status, RELEASED):
            return False
        await self._emit_released(conn, row, reason)
        if row.status == HELD:
            await self._adjust(conn, row.items, reserved=-1)
        else:
            await self._adjust(conn, row.items, on_hand=1)
        return True

    async def commit_reservation(self, req: ValidRequest) -> StubResponse:
        """HELD and not yet due -> COMMITTED: the units leave on_hand and reserved.

        One conditional update does it and returns the reservation, so the usual case
        reads nothing first; the reservation is read only to say why it did not."""
        where = {
            "w_reservation_id": req.params["path"]["reservationId"],
            "w_now": rfc3339(self.ctx.clock()),
        }
        committed = await self._committed(where)
        if committed is not None:
            return json_response(200, _reservation_body(committed))
        async with self.ctx.db.connect() as conn:
            row = await self._reservation(conn, req)
        if row.status == COMMITTED:
            return json_response(200, _reservation_body(row))
        if row.status == RELEASED:
            detail = f"Reservation {row.reservation_id} is RELEASED and cannot be committed."
        else:  # EXPIRED, or HELD past expires_at and not yet swept
            detail = (
                f"Reservation {row.reservation_id} EXPIRED at {row.expires_at} "
                "and cannot be committed."
            )
        raise refusal("conflict", detail, req)

    async def _committed(self, where: Mapping[str, str]) -> Row[Any] | None:
        """The reservation, moved HELD -> COMMITTED with its units taken; None when it was
        not HELD or was due (nothing changed)."""
        if self._commit_in_one is not None:
            return (await self.ctx.db.execute(self._commit_in_one, where)).first()
        async with self.transaction() as conn:
            committed = (await conn.execute(_COMMIT, where)).first()
            if committed is not None:
                await self._adjust(conn, committed.items, on_hand=-1, reserved=-1)  # last
        return committed

    async def expire_due(self) -> int:
        """Expire every HELD reservation whose ``expires_at`` has passed by ``ctx.clock``,
        giving its units back; returns how many. One transaction per reservation, so
        each locks its rows in the same order as every other call."""
        now = rfc3339(self.ctx.clock())
        # reservations committed from here on lower _made_since_read; the read of the
        # next due time at the end sees every one committed before it
        self._next_due, self._made_since_read = None, _NEVER
        async with self.ctx.db.connect() as conn:  # a read: nothing for the relay
            due = (await conn.execute(_DUE, {"w_now": now})).all()
        expired = 0
        for row in due:
            async with self.transaction() as conn:
                if await self._move(conn, row.reservation_id, HELD, EXPIRED):
                    await self._emit_released(conn, row, "expired")
                    await self._adjust(conn, row.items, reserved=-1)  # last: see _reserve
                    expired += 1
        async with self.ctx.db.connect() as conn:
            self._next_due = await conn.scalar(_NEXT_DUE) or _NEVER
        return expired

    async def _reservation(self, conn: Connection, req: ValidRequest) -> Row[Any]:
        reservation_id = req.params["path"]["reservationId"]
        row = (await conn.execute(_RESERVATION, {"w_reservation_id": reservation_id})).first()
        if row is None:
            raise refusal("not-found", f"Reservation {reservation_id} does not exist.", req)
        return row

    async def _move(self, conn: Connection, reservation_id: str, current: str, new: str) -> bool:
        """``current`` -> ``new`` if the reservation is still ``current``: whoever moves
        it first owns the transition (and its stock change)."""
        where = {"w_reservation_id": reservation_id, "w_current": current, "w_new": new}
        moved = await conn.execute(_MOVE, where)
        return moved.rowcount == 1

    async def _emit_released(self, conn: Connection, row: Row[Any], reason: str) -> None:
        data = {"reservation_id": row.reservation_id, "items": row.items, "reason": reason}
        await self.emit(conn, "inventory.released", row.order_id, data)
