"""order-svc: orders and the order saga (specs/openapi/order-svc.yaml).

``createOrder`` runs the saga synchronously -- reserve (inventory-svc) -> charge
(payment-svc) -> schedule (shipping-svc) -> commit (inventory-svc) -- and on a failure
undoes the completed steps in reverse order. Every peer call is recorded in
``saga_steps`` (operationId and outcome, in call order) so a test or the harness can
check exactly what was called. Calls to inventory-svc go through a circuit breaker
(:attr:`OrderSimulator.breaker`). State changes and their events (topic ``orders``)
are written in one transaction; :attr:`OrderSimulator.relay` publishes the outbox.

How long it waits for each peer is ``ctx.deadlines`` (every timeout of the platform, in
one place; a timed-out inventory call counts as a breaker failure), each longer than the
peer can take with its own calls.

A step that timed out (or whose peer could not be reached, or answered 5xx) has an
unknown outcome, never a decline: the order is rejected with the failure reason of the
unavailable peer (``inventory_unavailable``, ``payment_unavailable``,
``shipping_unavailable``). A charge of unknown outcome is *settled*: sent again exactly as
before (the same ``Idempotency-Key``, which payment-svc treats as the same request), and
whatever it answers is refunded. A reservation or a shipment of unknown outcome is undone
by order id (``releaseOrderReservation``, ``cancelOrderShipment``): the peer releases or
cancels what the order has, or, when the request has not landed yet, makes sure it holds
or ships nothing when it does -- whichever arrives first. (Settling a shipment by sending
it again would schedule one, and publish ``shipment.scheduled`` to the customer, for a
rejected order.) The release by order id is not judged by the circuit breaker and waits
until inventory-svc is rested (:attr:`CircuitBreaker.rested`: closed, and a cool-down
after its last failure, or a success since), so a struggling inventory-svc is not sent
clean-up while the orders are refused; the counted call that finds it answering again
sends the waiting releases before its saga goes on. Undo steps
(settling and compensation alike) are tried at once; one that does not finish goes to
:attr:`OrderSimulator.undo`, a queue in order-svc's own database retried in the
background until done, never dropped. Every answer about a created order names it
(``order_id``, and ``Location``).

Settings (``ctx.settings``), with their defaults:

``breaker_threshold`` (3), ``breaker_cooldown`` (30.0)
    consecutive inventory failures (timeout, connection error, 5xx) that open the
    circuit, and the seconds (``ctx.clock``) before one trial call is let through.
``retry_after`` (5)
    ``Retry-After`` seconds on a 503 when no open circuit dictates one.
``relay_interval`` (0.2)
    seconds between the outbox relay's retries while the bus is down.
``idempotency_ttl_seconds`` (86400)
    how long an Idempotency-Key's stored answer is replayed; an older key is unused
    again, and expired keys are pruned (see ``_idempotency``).
The spec's outcomes (order-svc.yaml, specs/CONVENTIONS.md): payment-svc unreachable,
too slow or 5xx (its 502 included) rejects the order as ``payment_unavailable`` (503); a
failed commit as ``inventory_unavailable`` (503, after undoing shipment, payment and
reservation); an unknown SKU (inventory 404) as ``out_of_stock``. The customer's
``contact`` comes in the request and goes into ``order.placed``, ``order.confirmed``
and ``order.rejected``. Idempotency keys are scoped per user, and only 201, 402 and 409
are stored for replay. ``cancelOrder`` compensates best-effort (each step's outcome is
in ``saga_steps``), since it documents no 5xx.
A step whose outcome is unknown (a timeout) is undone as above, and an undo step that
does not finish is queued and retried until done (``undo_steps``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.state import (
    OutboxRelay,
    Write,
    event_write,
    insert_into,
    make_event,
    modifies_in_with,
    new_id,
    outbox_table,
)

from ._breaker import BreakerState, CircuitBreaker, CircuitOpen
from ._idempotency import KeyedLocks, KeyRetention, fingerprint
from ._saga import (
    BY_ORDER,
    FORWARD,
    Call,
    Outcome,
    PeerUnavailable,
    SagaFailed,
    UndoStep,
    compensations,
    read_answer,
    settling,
    unknown,
)
from ._simulator import (
    Simulator,
    SimulatorContext,
    add_missing_rows,
    health_behaviour,
    json_response,
    not_found,
    problem_response,
)
from ._sql_sim import typed_row
from ._undo_queue import UndoQueue, undo_table

__all__ = ["OrderSimulator", "PeerUnavailable"]

logger = logging.getLogger(__name__)

COMPONENT = "order-svc"
INVENTORY, PAYMENT, SHIPPING = "inventory-svc", "payment-svc", "shipping-svc"
TOPIC = "orders"
MAX_AMOUNT = 99_999_999  # order-svc.yaml#/components/schemas/Amount
SKU = re.compile(r"SKU-[0-9]{4,8}")

DEFAULTS: Mapping[str, Any] = {
    "breaker_threshold": 3,
    "breaker_cooldown": 30.0,
    "retry_after": 5,
    "relay_interval": 0.2,
}
# Answers stored under an Idempotency-Key: outcomes a retry must not change. A 5xx (503
# included) is not stored, so a client retrying after Retry-After runs the saga again.
REPLAYED_STATUSES = frozenset({201, 402, 409})

ORDER_FIELDS = (
    "order_id",
    "user_id",
    "status",
    "items",
    "total_amount",
    "currency",
    "shipping_address",
    "reservation_id",
    "payment_id",
    "shipment_id",
    "failure_reason",
    "created_at",
    "updated_at",
)

_METADATA = MetaData()
orders = Table(
    "orders",
    _METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # newest first = seq desc
    Column("order_id", String(40), nullable=False, unique=True),
    Column("user_id", String(40), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("items", JSON, nullable=False),
    Column("total_amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("payment_method", String(255), nullable=False),
    Column("contact", JSON, nullable=False),
    Column("reservation_id", String(40)),
    Column("payment_id", String(40)),
    Column("shipment_id", String(40)),
    Column("failure_reason", String(32)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
saga_steps = Table(
    "saga_steps",
    _METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(40), nullable=False, index=True),
    Column("operation", String(32), nullable=False),  # the peer's operationId
    Column("outcome", String(16), nullable=False),  # succeeded | failed | short_circuited
    Column("detail", String(500), nullable=False),
    Column("at", String(40), nullable=False),
)
idempotency_keys = Table(
    "idempotency_keys",
    _METADATA,
    Column("user_id", String(40), primary_key=True),  # a key is scoped per user
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", String(40)),
    Column("status", Integer, nullable=False),
    Column("media_type", String(64)),
    Column("body", JSON),
    Column("headers", JSON, nullable=False),
    # When the key was first used: it is forgotten a retention later (KeyRetention).
    Column("created_at", DateTime(timezone=True), nullable=True, index=True),
)
outbox = outbox_table(_METADATA)
undo_steps = undo_table(_METADATA)

# The saga's statements, built once with bind parameters: building SQLAlchemy's
# expression objects (and their cache keys) per call was a fifth of the mesh's loop
# under load (issue 15). An UPDATE without ``.values()`` sets the columns its
# parameters name besides the ``w_`` ones of its WHERE clause.
_KEY_OF = select(idempotency_keys).where(
    idempotency_keys.c.user_id == bindparam("w_user_id"),
    idempotency_keys.c.key == bindparam("w_key"),
)
_ORDER_OF = select(orders).where(orders.c.order_id == bindparam("w_order_id"))
_UPDATE_ORDER = update(orders).where(orders.c.order_id == bindparam("w_order_id"))
_MOVE_ORDER = update(orders).where(
    orders.c.order_id == bindparam("w_order_id"), orders.c.status == bindparam("w_status")
)


def _move_and_queue() -> Insert:
    """A transition and its event as one statement, for a database that runs
    data-modifying ``WITH`` queries: the event's outbox row is selected from the order
    the update moved, so there is none when the order was not in the status expected
    (the insert's count says which). One round trip where ``BEGIN``, the update, the
    insert and ``COMMIT`` were four (issue 15)."""
    moved = (
        _MOVE_ORDER.values(
            status=bindparam("status"),
            failure_reason=bindparam("failure_reason"),
            updated_at=bindparam("updated_at"),
        )
        .returning(orders.c.order_id)
        .cte("moved")
    )
    columns = ("topic", "key", "event", "published")
    return insert(outbox).from_select(columns, typed_row(outbox, columns).select_from(moved))


_MOVE_AND_QUEUE = _move_and_queue()
# Undo steps whose peer answer means "nothing (more) to undo": done, not retried.
_NOTHING_TO_UNDO = frozenset({404, 409})


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Order`` schema's view of a stored order."""
    return {name: row[name] for name in ORDER_FIELDS}


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = text.partition(":")
        return int(seq) if prefix == "seq" else None
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None


class OrderSimulator(Simulator):
    """The saga coordinator; see the module docstring for settings and choices."""

    component = COMPONENT
    metadata: ClassVar[MetaData] = _METADATA

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.breaker = CircuitBreaker(
            threshold=int(self.setting("breaker_threshold")),
            cooldown=float(self.setting("breaker_cooldown")),
            clock=self._now,
            failures=(PeerUnavailable,),
        )
        self.relay = OutboxRelay(outbox, ctx.db, ctx.bus, COMPONENT)
        self.undo = UndoQueue(undo_steps, ctx.db, self._undo_later)
        self._key_locks = KeyedLocks()  # createOrder, by Idempotency-Key
        self._key_retention = KeyRetention.from_settings(ctx.settings, self._now)
        self._move_and_queue = _MOVE_AND_QUEUE if modifies_in_with(ctx.db) else None

    def _now(self) -> datetime:
        """The context's clock, looked up at each call: tests swap ``ctx.clock``."""
        return self.ctx.clock()

    def setting(self, name: str) -> Any:
        return self.ctx.settings.get(name, DEFAULTS[name])

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "getHealth": health_behaviour(COMPONENT),
            "createOrder": self.create_order,
            "listOrders": self.list_orders,
            "getOrder": self.get_order,
            "cancelOrder": self.cancel_order,
        }

    async def start(self) -> None:
        await super().start()
        await self._seed_history()
        self.relay.start(float(self.setting("relay_interval")))
        self.undo.start(float(self.setting("relay_interval")))

    async def stop(self) -> None:
        await self.undo.stop()
        await self.relay.stop()

    async def reset(self) -> None:
        await super().reset()
        self.breaker.reset()
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The seed data's confirmed orders (specs/seed.toml), without their events."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        users = {user["user_id"]: user for user in load_seed().users}
        rows = [
            {name: seeded.get(name) for name in ORDER_FIELDS}
            | {
                "status": "CONFIRMED",
                "payment_method": seeded["payment_method"],
                "contact": {key: users[seeded["user_id"]][key] for key in ("email", "phone")},
            }
            for seeded in load_seed().orders
        ]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, orders, rows, "order_id")

    async def saga_steps(self, order_id: str) -> list[tuple[str, str]]:
        """``(operationId, outcome)`` of every peer call made for the order, in order."""
        async with self.ctx.db.connect() as conn:
            rows = await conn.execute(
                select(saga_steps.c.operation, saga_steps.c.outcome)
                .where(saga_steps.c.order_id == order_id)
                .order_by(saga_steps.c.seq)
            )
            return [(row.operation, row.outcome) for row in rows]

    # --- operations -------------------------------------------------------------------------

    async def create_order(self, req: ValidRequest) -> StubResponse:
        """Replay the stored answer of a known Idempotency-Key, else run the saga once."""
        body: dict[str, Any] = req.body
        invalid = self._invalid_order(req)
        if invalid is not None:
            return invalid
        key, user = req.params["header"]["idempotency-key"], body["user_id"]
        digest = fingerprint(body)
        async with self._key_locks.hold(f"{user} {key}"):
            async with self.ctx.db.connect() as conn:
                stored = (await conn.execute(_KEY_OF, {"w_user_id": user, "w_key": key})).first()
            stale = stored is not None and self._key_retention.expired(stored.created_at)
            if stored is not None and not stale:
                if stored.fingerprint != digest:
                    return problem_response(
                        422,
                        "idempotency-key-reused",
                        title="Idempotency key reused",
                        detail=f"Idempotency-Key {key} was already used with a different "
                        "request body.",
                        instance=req.request.path,
                    )
                return StubResponse(stored.status, stored.body, stored.media_type, stored.headers)
            order_id, response = await self._place_order(body)
            if response.status not in REPLAYED_STATUSES:
                return response
            # Statements of their own, not one transaction (each is one round trip on
            # PostgreSQL, a block three): the key's lock is held, and an expired row
            # deleted before the insert fails is one the key no longer needed.
            db = self.ctx.db
            await self._key_retention.prune(db, idempotency_keys.c.created_at)
            if stale:  # expired, not pruned yet: the key is used anew
                await db.execute(
                    idempotency_keys.delete().where(
                        idempotency_keys.c.user_id == user, idempotency_keys.c.key == key
                    )
                )
            await db.execute(
                insert_into(idempotency_keys),
                {
                    "user_id": user,
                    "key": key,
                    "fingerprint": digest,
                    "order_id": order_id,
                    "status": response.status,
                    "media_type": response.media_type,
                    "body": response.body,
                    "headers": response.headers,
                    "created_at": self._now(),
                },
            )
            return response

    async def list_orders(self, req: ValidRequest) -> StubResponse:
        """Newest first by insertion order; the cursor is the last row's ``seq`` (keyset
        paging, so orders placed meanwhile neither repeat nor vanish from later pages)."""
        query, acting = req.params["query"], req.params["header"].get("x-user-id")
        user, limit = query.get("user_id") or acting, query.get("limit", 20)
        page = select(orders).order_by(orders.c.seq.desc()).limit(limit + 1)
        if acting is not None and user != acting:
            return json_response(200, {"items": [], "next_cursor": None})
        if user is not None:
            page = page.where(orders.c.user_id == user)
        if "status" in query:
            page = page.where(orders.c.status == query["status"])
        if "cursor" in query:
            after = decode_cursor(query["cursor"])
            if after is None:
                return problem_response(
                    422,
                    "validation-error",
                    title="Validation failed",
                    detail="The cursor is not one this service issued.",
                    instance=req.request.path,
                    errors=[{"pointer": "/query/cursor", "message": "unknown cursor"}],
                )
            page = page.where(orders.c.seq < after)
        async with self.ctx.db.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(page)]
        more = len(rows) > limit
        rows = rows[:limit]
        return json_response(
            200,
            {
                "items": [order_body(row) for row in rows],
                "next_cursor": encode_cursor(rows[-1]["seq"]) if more else None,
            },
        )

    async def get_order(self, req: ValidRequest) -> StubResponse:
        order = await self._visible_order(req)
        if order is None:
            return not_found(req, f"Order {req.params['path']['orderId']}")
        return json_response(200, order_body(order))

    async def cancel_order(self, req: ValidRequest) -> StubResponse:
        """Claim the CONFIRMED order as CANCELLED (with its event) in one conditional
        update -- so two concurrent cancels cannot both compensate -- then undo the
        shipment, the payment and the reservation, best effort."""
        order = await self._visible_order(req)
        if order is None:
            return not_found(req, f"Order {req.params['path']['orderId']}")
        order_id = order["order_id"]
        claimed = await self._transition(
            order,
            "CANCELLED",
            "cancelled_by_user",
            only_from="CONFIRMED",
        )
        if claimed is None:
            current = await self._load(order_id)
            status = current["status"] if current else order["status"]
            detail = {
                "CANCELLED": f"Order {order_id} is already CANCELLED.",
                "REJECTED": f"Order {order_id} was REJECTED and cannot be cancelled.",
            }.get(status, f"Order {order_id} is {status} and cannot be cancelled.")
            return problem_response(
                409, "conflict", title="Conflict", detail=detail, instance=req.request.path
            )
        await self._undo_all(
            order_id,
            compensations(order, FORWARD, "requested_by_customer", "cancelled_by_user"),
        )
        return json_response(200, order_body(claimed))

    # --- the saga -----------------------------------------------------------------------------

    async def _place_order(self, body: dict[str, Any]) -> tuple[str, StubResponse]:
        """Insert the PENDING order, run the forward steps, then confirm it or undo what
        was done and reject it."""
        order = await self._insert_order(body)
        done: list[str] = []
        steps: list[Write] = []  # the step just made, recorded with the ids it brought
        try:
            for operation, step in (
                ("reserveStock", self._reserve),
                ("createPayment", self._charge),
                ("scheduleShipment", self._schedule),
                ("commitReservation", self._commit),
            ):
                order = await self._set_ids(order, await step(order, steps), steps)
                done.append(operation)
        except SagaFailed as failure:
            order = await self._set_ids(order, failure.ids, steps)
            undo = compensations(order, done, "order_compensation", failure.reason)
            if failure.unsettled is not None:
                undo.insert(0, failure.unsettled)
            await self._undo_all(order["order_id"], undo)
            await self._transition(order, "REJECTED", failure.reason)
            return order["order_id"], failure.response(order["order_id"])
        confirmed = await self._transition(order, "CONFIRMED", None)
        assert confirmed is not None  # nobody else moves a PENDING order
        return order["order_id"], json_response(201, order_body(confirmed))

    async def _reserve(self, order: Mapping[str, Any], steps: list[Write]) -> dict[str, str]:
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]
        call = Call(
            "reserveStock",
            INVENTORY,
            "/reservations",
            {"order_id": order["order_id"], "items": lines},
        )
        outcome = await self._attempt(order["order_id"], call, expect=201, steps=steps)
        if outcome.ok:
            return {"reservation_id": outcome.body["reservation_id"]}
        if outcome.status in (404, 409):  # 404: a SKU inventory-svc does not stock
            raise self._out_of_stock(order, outcome)
        failure = self._inventory_unavailable(outcome.detail)
        if unknown(outcome):  # the hold may land yet: released by order id, whenever
            release = {"reason": "inventory_unavailable"}
            failure.unsettled = ("releaseOrderReservation", release)
        raise failure

    async def _charge(self, order: Mapping[str, Any], steps: list[Write]) -> dict[str, str]:
        """Charge with a key derived from the order id, so a retried charge replays."""
        order_id = order["order_id"]
        call = Call(
            "createPayment",
            PAYMENT,
            "/payments",
            {
                "order_id": order_id,
                "amount": order["total_amount"],
                "currency": order["currency"],
                "payment_method": order["payment_method"],
                "description": f"Order {order_id}",
            },
            {"Idempotency-Key": f"{order_id}-charge"},
        )
        outcome = await self._attempt(order_id, call, expect=201, steps=steps)
        if outcome.ok:
            return {"payment_id": outcome.body["payment_id"]}
        if outcome.status == 402:
            payment_id = outcome.body.get("payment_id")
            raise self._card_declined(
                str(outcome.body.get("decline_code") or "generic_decline"),
                ids={"payment_id": payment_id} if isinstance(payment_id, str) else {},
            )
        if unknown(outcome):  # never a decline: whether the card was charged is unknown
            raise SagaFailed(
                "payment_unavailable",
                503,
                "payment-unavailable",
                "Payment unavailable",
                f"payment-svc could not settle the charge ({outcome.detail}); whether the "
                "card was charged is being settled, and a charge is refunded.",
                headers={"Retry-After": str(int(self.setting("retry_after")))},
                unsettled=settling(call),
            )
        raise SagaFailed(  # refused for another reason: nothing was charged, not a decline
            "payment_unavailable",
            503,
            "payment-unavailable",
            "Payment unavailable",
            f"payment-svc could not take the payment ({outcome.detail}); "
            "the reservation was released.",
            headers={"Retry-After": str(int(self.setting("retry_after")))},
        )

    async def _schedule(self, order: Mapping[str, Any], steps: list[Write]) -> dict[str, str]:
        lines = [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]
        call = Call(
            "scheduleShipment",
            SHIPPING,
            "/shipments",
            {"order_id": order["order_id"], "address": order["shipping_address"], "items": lines},
        )
        outcome = await self._attempt(order["order_id"], call, expect=201, steps=steps)
        if outcome.ok:
            return {"shipment_id": outcome.body["shipment_id"]}
        raise SagaFailed(
            "shipping_unavailable",
            503,
            "shipping-unavailable",
            "Shipping unavailable",
            f"shipping-svc could not schedule the shipment ({outcome.detail}); "
            "the payment was refunded.",
            headers={"Retry-After": str(int(self.setting("retry_after")))},
            # unknown, or a 409 (a shipment exists after all): cancelled by order id
            unsettled=(
                ("cancelOrderShipment", {}) if unknown(outcome) or outcome.status == 409 else None
            ),
        )

    async def _commit(self, order: Mapping[str, Any], steps: list[Write]) -> dict[str, str]:
        call = Call(
            "commitReservation", INVENTORY, f"/reservations/{order['reservation_id']}/commit"
        )
        outcome = await self._attempt(order["order_id"], call, expect=200, steps=steps)
        if outcome.ok:
            return {}
        raise self._inventory_unavailable(
            f"the reservation could not be committed: {outcome.detail}"
        )

    async def _undo_all(self, order_id: str, steps: Sequence[UndoStep]) -> None:
        """Try each undo step once, in the order given; one that does not finish goes to
        the undo queue (retried until done), and the next still runs."""
        for kind, payload in steps:
            if kind == "releaseOrderReservation" and not self.breaker.rested:
                logger.info("%s: %s waits for inventory-svc to be rested", order_id, kind)
                await self.undo.add(kind, order_id, payload)
            elif not await self._undo_step(kind, order_id, payload):
                logger.warning("%s: %s did not finish; retried in the background", order_id, kind)
                await self.undo.add(kind, order_id, payload)

    async def _undo_later(self, kind: str, order_id: str, payload: dict[str, Any]) -> bool:
        """The undo queue's attempt at a step: not counted by the breaker."""
        return await self._undo_step(kind, order_id, payload, counted=False)

    async def _undo_step(
        self, kind: str, order_id: str, payload: dict[str, Any], *, counted: bool = True
    ) -> bool:
        """One attempt at an undo step; True when it is done (the peer undid it, or there
        was nothing (left) to undo)."""
        if kind.startswith("settle:"):
            return await self._settle(kind.removeprefix("settle:"), order_id, payload)
        if kind in BY_ORDER:
            return await self._undo_by_order(kind, order_id, payload)
        if kind == "releaseReservation":
            path = f"/reservations/{payload['reservation_id']}/release"
            reason = payload.get("reason", "inventory_unavailable")
            call = Call(kind, INVENTORY, path, json={"reason": reason})
        elif kind == "refundPayment":
            path = f"/payments/{payload['payment_id']}/refund"
            call = Call(kind, PAYMENT, path, json={"reason": payload["reason"]})
        else:  # cancelShipment
            call = Call(kind, SHIPPING, f"/shipments/{payload['shipment_id']}/cancel")
        outcome = await self._attempt(order_id, call, expect=200, counted=counted)
        return outcome.ok or outcome.status in _NOTHING_TO_UNDO

    async def _release_waiting(self) -> None:
        """inventory-svc answers again: the releases by order id that waited for it are
        sent now, oldest first, before the saga that saw it answer goes on -- units the
        failed orders may hold come back before this order needs more, and the calls on
        the edge come in one order (reserve, the releases, commit)."""
        await self.undo.run_once(kinds=frozenset({"releaseOrderReservation"}))

    async def _undo_by_order(self, kind: str, order_id: str, payload: dict[str, Any]) -> bool:
        """Release the order's reservation or cancel its shipment by order id: what the
        order has is undone, and a request of it still to land holds or ships nothing.
        The release waits until inventory-svc is rested (not judged by the breaker)."""
        if kind == "releaseOrderReservation":
            if not self.breaker.rested:
                return False  # the undo queue tries again
            path = f"/orders/{order_id}/reservation/release"
            call = Call(kind, INVENTORY, path, json={"reason": payload["reason"]})
        else:  # cancelOrderShipment
            call = Call(kind, SHIPPING, f"/orders/{order_id}/shipment/cancel")
        outcome = await self._attempt(order_id, call, expect=200, counted=False)
        return outcome.ok or outcome.status == 204 or outcome.status in _NOTHING_TO_UNDO

    async def _settle(self, operation: str, order_id: str, payload: dict[str, Any]) -> bool:
        """Send a charge whose outcome was unknown again, as it was, and refund what it
        answers: payment-svc treats it as the same request (its Idempotency-Key), so this
        finds what the first one did (or does it now), and never charges twice."""
        call = Call(operation, PAYMENT, payload["path"], payload["json"], payload["headers"])
        outcome = await self._attempt(order_id, call, expect=201, counted=False)
        if unknown(outcome) or not outcome.sent:
            return False
        found = outcome.body.get("payment_id") if outcome.ok else None
        if not isinstance(found, str):
            return True  # refused (declined...): nothing was charged
        refund = {"payment_id": found, "reason": "order_compensation"}
        return await self._undo_step("refundPayment", order_id, refund, counted=False)

    # --- failures -------------------------------------------------------------------------

    def _out_of_stock(self, order: Mapping[str, Any], outcome: Outcome) -> SagaFailed:
        ordered = [item["sku"] for item in order["items"]]
        named = outcome.body.get("skus")
        if not (isinstance(named, list) and named):  # a 404 names the SKU in its detail
            mentioned = set(SKU.findall(outcome.detail))
            named = [sku for sku in ordered if sku in mentioned]
        skus = named or ordered
        return SagaFailed(
            "out_of_stock",
            409,
            "out-of-stock",
            "Out of stock",
            f"Not enough stock for {', '.join(skus)}.",
            extensions={"skus": skus},
        )

    def _inventory_unavailable(self, why: str) -> SagaFailed:
        """503 naming the breaker's state after this failure; an open circuit sets
        Retry-After to the rest of its cool-down."""
        state = self.breaker.state
        retry = (
            int(self.setting("retry_after"))
            if state is BreakerState.CLOSED
            else self.breaker.retry_after()
        )
        return SagaFailed(
            "inventory_unavailable",
            503,
            "inventory-unavailable",
            "Inventory unavailable",
            why,
            extensions={"circuit": state.value},
            headers={"Retry-After": str(retry)},
        )

    @staticmethod
    def _card_declined(code: str, *, ids: dict[str, str] | None = None) -> SagaFailed:
        detail = f"The card was declined ({code}); the reservation was released."
        return SagaFailed(
            "card_declined",
            402,
            "card-declined",
            "Card declined",
            detail,
            extensions={"decline_code": code},
            ids=ids or {},
        )

    # --- peers ----------------------------------------------------------------------------

    async def _attempt(
        self,
        order_id: str,
        call: Call,
        *,
        expect: int,
        counted: bool = True,
        steps: list[Write] | None = None,
    ) -> Outcome:
        """Make the call (inventory through the breaker), record it as a saga step (or
        add its record to ``steps``, written by the caller), and say how it went; never
        raises for a peer's failure. An uncounted call (settling an unknown outcome, an
        undo step retried later) does not count towards the breaker, and is not made
        while the circuit is not closed: the breaker judges the orders, and gives
        inventory-svc its rest."""
        try:
            if call.peer == INVENTORY and not counted:
                if self.breaker.state is not BreakerState.CLOSED:
                    raise CircuitOpen(self.breaker.state, self.breaker.retry_after())
                response = await self._send(call)
            elif call.peer == INVENTORY:
                recovering = self.breaker.consecutive_failures > 0
                response = await self.breaker.call(lambda: self._send(call))
                if recovering:
                    await self._release_waiting()
            else:
                response = await self._send(call)
        except CircuitOpen as exc:
            outcome = Outcome(
                False,
                None,
                {},
                f"the circuit breaker on inventory-svc is {exc.state.value}; retry later",
                sent=False,
            )
            await self._record(order_id, call.operation, "short_circuited", outcome.detail, steps)
            return outcome
        except PeerUnavailable as exc:
            outcome = Outcome(False, None, {}, str(exc))
        else:
            outcome = read_answer(response, expect)
        outcome_word = "succeeded" if outcome.ok else "failed"
        await self._record(order_id, call.operation, outcome_word, outcome.detail, steps)
        return outcome

    async def _send(self, call: Call) -> httpx.Response:
        """One request; a timeout, a transport error, a missing route or a 5xx raise
        :class:`PeerUnavailable` (asyncio's timeout also bounds in-process peers, which
        ignore httpx's)."""
        timeout = self.ctx.deadlines.edge(COMPONENT, call.peer)
        try:
            client = self.ctx.peers[call.peer]
            async with asyncio.timeout(timeout):
                response = await client.post(call.path, json=call.json, headers=dict(call.headers))
        except TimeoutError as exc:
            raise PeerUnavailable(f"{call.peer} did not answer within {timeout:g} s") from exc
        except (httpx.TransportError, LookupError) as exc:
            raise PeerUnavailable(f"{call.peer} could not be reached: {exc}") from exc
        if response.status_code >= 500:
            raise PeerUnavailable(f"{call.peer} answered {response.status_code}")
        return response

    # --- state ----------------------------------------------------------------------------

    def _invalid_order(self, req: ValidRequest) -> StubResponse | None:
        """The checks the schema cannot express: the acting user and the total's range."""
        body, acting = req.body, req.params["header"].get("x-user-id")
        errors = []
        if acting is not None and acting != body["user_id"]:
            errors.append(
                {"pointer": "/body/user_id", "message": "must equal the X-User-Id header"}
            )
        if sum(i["quantity"] * i["unit_amount"] for i in body["items"]) > MAX_AMOUNT:
            errors.append({"pointer": "/body/items", "message": f"the total exceeds {MAX_AMOUNT}"})
        if not errors:
            return None
        return problem_response(
            422,
            "validation-error",
            title="Validation failed",
            detail=f"{len(errors)} field(s) are not valid.",
            instance=req.request.path,
            errors=errors,
        )

    async def _insert_order(self, body: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339(self.ctx.clock())
        order: dict[str, Any] = {
            "order_id": new_id("ord"),
            "user_id": body["user_id"],
            "status": "PENDING",
            "items": body["items"],
            "total_amount": sum(i["quantity"] * i["unit_amount"] for i in body["items"]),
            "currency": body["currency"],
            "shipping_address": body["shipping_address"],
            "payment_method": body["payment_method"],
            "contact": body["contact"],
            "reservation_id": None,
            "payment_id": None,
            "shipment_id": None,
            "failure_reason": None,
            "created_at": now,
            "updated_at": now,
        }
        placed = self._event(order, "order.placed")
        await self.ctx.db.execute_all([(insert_into(orders), order), placed])
        self.relay.wake()
        return order

    async def _set_ids(
        self, order: dict[str, Any], ids: Mapping[str, str], steps: list[Write]
    ) -> dict[str, Any]:
        """Persist ids learnt from a step at once, so the order shows the saga's progress,
        with the record of the step that brought them (``steps``, emptied): one
        transaction, one round trip on PostgreSQL (issue 15)."""
        changed = {**ids, "updated_at": rfc3339(self.ctx.clock())} if ids else {}
        writes = list(steps)
        steps.clear()
        if changed:
            writes.append((_UPDATE_ORDER, {**changed, "w_order_id": order["order_id"]}))
        if writes:
            await self.ctx.db.execute_all(writes)
        return {**order, **changed}

    async def _transition(
        self,
        order: Mapping[str, Any],
        status: str,
        reason: str | None,
        *,
        only_from: str = "PENDING",
    ) -> dict[str, Any] | None:
        """Move the order from ``only_from`` to ``status`` and queue its event, in one
        transaction; None when the order was not in ``only_from`` any more."""
        changed = {
            "status": status,
            "failure_reason": reason,
            "updated_at": rfc3339(self.ctx.clock()),
        }
        after = {**order, **changed}
        where = {"w_order_id": order["order_id"], "w_status": only_from}
        kind = {
            "CONFIRMED": "order.confirmed",
            "REJECTED": "order.rejected",
            "CANCELLED": "order.cancelled",
        }[status]
        event = self._event(after, kind, previous_status=only_from)
        if self._move_and_queue is not None:
            values = {**changed, **where, **event[1]}
            moved = (await self.ctx.db.execute(self._move_and_queue, values)).rowcount == 1
        else:
            async with self.ctx.db.begin() as conn:
                moved = (await conn.execute(_MOVE_ORDER, {**changed, **where})).rowcount == 1
                if moved:
                    await conn.execute(*event)
        if not moved:
            return None
        self.relay.wake()
        return after

    def _event(self, order: Mapping[str, Any], kind: str, previous_status: str = "") -> Write:
        """The outbox row of the order's event of type ``kind``, as a write."""
        data: dict[str, Any] = {"user_id": order["user_id"]}
        contact = {"email": order["contact"]["email"], "phone": order["contact"].get("phone")}
        if kind == "order.placed":
            data |= {key: order[key] for key in ("items", "total_amount", "currency")} | contact
        elif kind == "order.confirmed":
            data |= {
                key: order[key] for key in ("payment_id", "shipment_id", "total_amount", "currency")
            }
            data |= contact
        elif kind == "order.rejected":
            data |= {"reason": order["failure_reason"]} | contact
        else:  # order.cancelled: the failure_reason is the reason (cancelled_by_user)
            data |= {"reason": order["failure_reason"], "previous_status": previous_status}
        event = make_event(kind, COMPONENT, order["order_id"], data, self.ctx.clock())
        return event_write(outbox, TOPIC, order["order_id"], event)

    async def _record(
        self,
        order_id: str,
        operation: str,
        outcome: str,
        detail: str,
        steps: list[Write] | None = None,
    ) -> None:
        """Write the step's record now, or add it to ``steps`` for the caller to write."""
        step = {
            "order_id": order_id,
            "operation": operation,
            "outcome": outcome,
            "detail": detail[:500],
            "at": rfc3339(self.ctx.clock()),
        }
        if steps is None:
            await self.ctx.db.execute(insert_into(saga_steps), step)
        else:
            steps.append((insert_into(saga_steps), step))

    async def _load(self, order_id: str) -> dict[str, Any] | None:
        async with self.ctx.db.connect() as conn:
            row = (await conn.execute(_ORDER_OF, {"w_order_id": order_id})).first()
        return dict(row._mapping) if row is not None else None

    async def _visible_order(self, req: ValidRequest) -> dict[str, Any] | None:
        """The order of the path, unless it does not exist or belongs to another user
        than the one the gateway acts for."""
        order = await self._load(req.params["path"]["orderId"])
        acting = req.params["header"].get("x-user-id")
        if order is None or (acting is not None and order["user_id"] != acting):
            return None
        return order
