"""shipping-svc: schedules and cancels shipments; publishes ``shipment.scheduled``.

State: ``shipments`` in shipping-svc's own database. "An order has at most one shipment
in status SCHEDULED" is a unique constraint, not a check-then-insert: the nullable
``scheduled_order_id`` holds the order id while the shipment is SCHEDULED and NULL once
cancelled (NULLs never collide), so two concurrent schedules cannot both win.

An order ships once, and that too is a key: ``order_shipments`` has one row per order
that was ever scheduled (naming its shipment) or whose shipping was cancelled by order id
before any shipment was scheduled (``cancelOrderShipment``; no shipment: a *tombstone*).
A schedule inserts its row in the transaction that creates the shipment, so of a
cancellation by order id and a schedule landing late the database decides which came
first: the schedule finding the tombstone ships nothing (409); the cancellation finding
the shipment cancels it.

Each scheduling writes ``shipment.scheduled`` to the outbox in the same transaction
(topic ``shipments``, keyed by the order id); the relay publishes it when a bus is set.

Deterministic choices: the carrier by destination country (``carriers``, merged over
:data:`DEFAULT_CARRIERS`; any other country -> ``default_carrier``); the estimated
delivery is the ctx.clock date plus ``transit_business_days`` working days (Mon-Fri).

Settings (``settings["shipping-svc"]``): ``carriers`` (country -> dhl|ups|dpd, ``{}``),
``default_carrier`` (``ups``), ``transit_business_days`` (3).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.exc import IntegrityError

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.state import event_write, insert_into, make_event, new_id, outbox_table

from ._paging import invalid_cursor, keyset_page, page_of
from ._simulator import add_missing_rows, json_response, not_found, problem_response, rfc3339
from ._sql_sim import OutboxSimulator

__all__ = ["DEFAULT_CARRIERS", "ShippingSimulator", "add_business_days", "tracking_number"]

TOPIC = "shipments"
DEFAULT_CARRIERS: Mapping[str, str] = {
    "DE": "dhl",
    "AT": "dpd",
    "BE": "dpd",
    "FR": "dpd",
    "NL": "dpd",
    "PL": "dpd",
}
DEFAULT_CARRIER = "ups"
DEFAULT_TRANSIT_DAYS = 3
# Tracking numbers shaped like each carrier's: (fixed prefix, alphabet, random length).
_TRACKING_FORMATS = {
    "dhl": ("00340434", string.digits, 12),  # SSCC-style, 20 digits
    "dpd": ("", string.digits, 14),
    "ups": ("1Z", string.digits + string.ascii_uppercase, 16),
}
_SHIPMENT_FIELDS = (
    "shipment_id",
    "order_id",
    "status",
    "carrier",
    "tracking_number",
    "estimated_delivery",
    "address",
    "items",
    "created_at",
    "updated_at",
)


def add_business_days(start: date, days: int) -> date:
    """The date ``days`` working days (Monday to Friday) after ``start``."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:  # Monday (0) to Friday (4)
            days -= 1
    return current


def tracking_number(carrier: str) -> str:
    """A fresh tracking number in the carrier's format."""
    prefix, alphabet, length = _TRACKING_FORMATS[carrier]
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class ShippingSimulator(OutboxSimulator):
    """Shipments with a carrier booking, an outbox and the one-scheduled-per-order rule."""

    component = "shipping-svc"
    topic = TOPIC
    metadata = MetaData()
    shipments = Table(
        "shipments",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),  # newest-first order
        Column("shipment_id", String(40), nullable=False, unique=True),
        Column("order_id", String(40), nullable=False, index=True),
        Column("scheduled_order_id", String(40), unique=True),  # order_id while SCHEDULED
        Column("status", String(16), nullable=False),
        Column("carrier", String(8), nullable=False),
        Column("tracking_number", String(64), nullable=False),
        Column("estimated_delivery", String(10), nullable=False),
        Column("address", JSON, nullable=False),
        Column("items", JSON, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
    )
    # one row per order ever scheduled, or cancelled by order id first (shipment_id NULL)
    order_shipments = Table(
        "order_shipments",
        metadata,
        Column("order_id", String(40), primary_key=True),
        Column("shipment_id", String(40)),
    )
    outbox = outbox_table(metadata)
    # built once (see inventory-svc's statements)
    _claim_query = select(order_shipments).where(
        order_shipments.c.order_id == bindparam("w_order_id")
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        settings = self.ctx.settings
        self.carriers = {**DEFAULT_CARRIERS, **settings.get("carriers", {})}
        self.default_carrier = str(settings.get("default_carrier", DEFAULT_CARRIER))
        self.transit_days = int(settings.get("transit_business_days", DEFAULT_TRANSIT_DAYS))

    async def start(self) -> None:
        await super().start()
        await self._seed_history()

    async def reset(self) -> None:
        await super().reset()
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The SCHEDULED shipments of the seed data's orders (specs/seed.toml)."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        seeded = load_seed().orders
        shipments = [
            {
                "shipment_id": order["shipment_id"],
                "order_id": order["order_id"],
                "scheduled_order_id": order["order_id"],
                "status": "SCHEDULED",
                "carrier": order["carrier"],
                "tracking_number": order["tracking_number"],
                "estimated_delivery": order["estimated_delivery"],
                "address": order["shipping_address"],
                "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]],
                "created_at": order["created_at"],
                "updated_at": order["created_at"],
            }
            for order in seeded
        ]
        claims = [{"order_id": o["order_id"], "shipment_id": o["shipment_id"]} for o in seeded]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, self.shipments, shipments, "shipment_id")
            await add_missing_rows(conn, self.order_shipments, claims, "order_id")

    def operations(self) -> dict[str, Behaviour]:
        return {
            "scheduleShipment": self.schedule_shipment,
            "listShipments": self.list_shipments,
            "getShipment": self.get_shipment,
            "cancelShipment": self.cancel_shipment,
            "cancelOrderShipment": self.cancel_order_shipment,
        }

    # --- scheduling ---

    async def schedule_shipment(self, req: ValidRequest) -> StubResponse:
        """An order is shipped once: a second request for an order that has a shipment
        (scheduled, or cancelled since) is 409 naming it, so a request that lands late,
        after its caller cancelled the order's shipment (by id, or by order id before
        there was one), ships nothing."""
        body = req.body
        now = self.ctx.clock()
        carrier = self.carriers.get(body["address"]["country"], self.default_carrier)
        shipment = {
            "shipment_id": new_id("shp"),
            "order_id": body["order_id"],
            "status": "SCHEDULED",
            "carrier": carrier,
            "tracking_number": tracking_number(carrier),
            "estimated_delivery": add_business_days(now.date(), self.transit_days).isoformat(),
            "address": body["address"],
            "items": body["items"],
            "created_at": rfc3339(now),
            "updated_at": rfc3339(now),
        }
        event = make_event(
            "shipment.scheduled",
            self.component,
            shipment["order_id"],
            {
                k: shipment[k]
                for k in ("shipment_id", "carrier", "tracking_number", "estimated_delivery")
            },
            now,
        )
        row = shipment | {"scheduled_order_id": shipment["order_id"]}
        claim = {"order_id": shipment["order_id"], "shipment_id": shipment["shipment_id"]}
        try:
            await self.ctx.db.execute_all(
                [
                    (insert_into(self.order_shipments), claim),
                    (insert_into(self.shipments), row),
                    event_write(self.outbox, TOPIC, shipment["order_id"], event),
                ]
            )
        except IntegrityError:  # the order already has a shipment, or a tombstone (nothing
            # is read first: the claim's unique order id says so, a round trip less)
            return await self._already_scheduled(req, shipment["order_id"])
        self.relay.wake()
        location = f"/shipments/{shipment['shipment_id']}"
        return json_response(201, shipment, headers={"Location": location})

    async def _already_scheduled(self, req: ValidRequest, order_id: str) -> StubResponse:
        claim = await self._claim_of(order_id)
        if claim is not None and claim["shipment_id"] is None:
            return problem_response(
                409,
                "conflict",
                title="Conflict",
                detail=f"The shipping of order {order_id} was cancelled; it is not shipped.",
                instance=req.request.path,
            )
        existing = await self._find(self.shipments.c.order_id == order_id)
        return self._conflict(req, order_id, existing)

    async def _claim_of(self, order_id: str) -> RowMapping | None:
        """The order's row in ``order_shipments``: None when it never had one."""
        async with self.ctx.db.connect() as conn:
            found = await conn.execute(self._claim_query, {"w_order_id": order_id})
            return found.mappings().first()

    @staticmethod
    def _conflict(req: ValidRequest, order_id: str, existing: Any) -> StubResponse:
        shipment_id = existing["shipment_id"] if existing else "unknown"
        status = str(existing["status"]).lower() if existing else "scheduled"
        return problem_response(
            409,
            "conflict",
            title="Conflict",
            detail=f"Order {order_id} already has the {status} shipment {shipment_id}.",
            instance=req.request.path,
            shipment_id=shipment_id,
        )

    # --- reading ---

    async def list_shipments(self, req: ValidRequest) -> StubResponse:
        """Newest first; the cursor is the position (``seq``) of the last one shown."""
        query = req.params["query"]
        statement = select(self.shipments)
        if "order_id" in query:
            statement = statement.where(self.shipments.c.order_id == query["order_id"])
        page = keyset_page(req, statement, self.shipments.c.seq, int, newest_first=True)
        if page is None:
            return invalid_cursor(req)
        statement, limit = page
        async with self.ctx.db.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        items, next_cursor = page_of(rows, limit, lambda row: {"seq": row["seq"]})
        return json_response(
            200, {"items": [_public(r) for r in items], "next_cursor": next_cursor}
        )

    async def get_shipment(self, req: ValidRequest) -> StubResponse:
        shipment_id = req.params["path"]["shipmentId"]
        found = await self._find(self.shipments.c.shipment_id == shipment_id)
        if found is None:
            return not_found(req, f"Shipment {shipment_id}")
        return json_response(200, _public(found))

    async def _find(self, condition: Any) -> RowMapping | None:
        async with self.ctx.db.connect() as conn:
            return (await conn.execute(select(self.shipments).where(condition))).mappings().first()

    # --- cancelling ---

    async def cancel_order_shipment(self, req: ValidRequest) -> StubResponse:
        """The order's shipment cancelled (200, also when it already was), or, when it
        has none, a tombstone in its place (204) so that none is scheduled later."""
        order_id = req.params["path"]["orderId"]
        claim = await self._claim_of(order_id)
        if claim is None:
            try:
                await self.ctx.db.execute(
                    self.order_shipments.insert().values(order_id=order_id, shipment_id=None)
                )
                return StubResponse(204, None, None)
            except IntegrityError:  # a schedule landed meanwhile: cancel its shipment
                claim = await self._claim_of(order_id)
        if claim is None or claim["shipment_id"] is None:
            return StubResponse(204, None, None)
        shipment_id = claim["shipment_id"]
        await self._cancel(shipment_id)
        found = await self._find(self.shipments.c.shipment_id == shipment_id)
        assert found is not None  # written with its claim, in one transaction
        return json_response(200, _public(found))

    async def _cancel(self, shipment_id: str) -> int:
        """SCHEDULED -> CANCELLED; how many rows moved (0: not SCHEDULED, or unknown)."""
        table = self.shipments
        changed = await self.ctx.db.execute(
            table.update()
            .where(table.c.shipment_id == shipment_id, table.c.status == "SCHEDULED")
            .values(
                status="CANCELLED",
                scheduled_order_id=None,
                updated_at=rfc3339(self.ctx.clock()),
            )
        )
        return int(changed.rowcount)

    async def cancel_shipment(self, req: ValidRequest) -> StubResponse:
        """SCHEDULED -> CANCELLED in one conditional UPDATE, so a concurrent second
        cancel sees 409 rather than cancelling twice."""
        shipment_id = req.params["path"]["shipmentId"]
        changed = await self._cancel(shipment_id)
        found = await self._find(self.shipments.c.shipment_id == shipment_id)
        if found is None:
            return not_found(req, f"Shipment {shipment_id}")
        if changed == 0:
            return problem_response(
                409,
                "conflict",
                title="Conflict",
                detail=f"Shipment {shipment_id} is already {found['status']}.",
                instance=req.request.path,
                current_status=found["status"],
            )
        return json_response(200, _public(found))


def _public(row: RowMapping) -> dict[str, Any]:
    """A shipment as the API shows it (no position, no uniqueness helper column)."""
    return {name: row[name] for name in _SHIPMENT_FIELDS}
