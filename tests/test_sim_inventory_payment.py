"""Simulators of inventory-svc and payment-svc, through HTTP, on both backends.

payment-svc runs against the stripe simulator in-process; every exchange of every stub
is recorded, so a test can count exactly what reached Stripe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

from conftest import asgi_client
from ecom_harness.specs import load_seed
from ecom_harness.stubs import Deadlines, Exchange, InMemoryBus, Record, StubHost
from ecom_harness.stubs.behaviours import rfc3339
from ecom_harness.stubs.behaviours.inventory_svc import InventorySimulator
from ecom_harness.stubs.behaviours.payment_svc import DEFAULT_SECRET_KEY, PaymentSimulator
from ecom_harness.stubs.state import modifies_in_with

HostFactory = Callable[..., Awaitable[StubHost]]
SERVICE = {"X-Service-Token": "order-svc-token"}
T0 = datetime(2025, 3, 14, 10, 22, 31, tzinfo=UTC)  # the inventory spec's example time
ORDER = "ord_7Hq2Kd9xLm"
_S = TypeVar("_S")


class Clock:
    """A clock the test moves by hand (assigned to a simulator's ``ctx.clock``)."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Events:
    """A consumer group of the test: every record it was given, in order."""

    records: list[Record] = field(default_factory=list)

    async def handle(self, record: Record) -> None:
        self.records.append(record)

    def of(self, message_type: str) -> list[Record]:
        return [r for r in self.records if r.message_type == message_type]


async def subscribed(topic: str) -> tuple[InMemoryBus, Events]:
    bus, events = InMemoryBus(), Events()
    await bus.subscribe(topic, "test", events.handle)
    return bus, events


def simulator(host: StubHost, kind: type[_S]) -> _S:
    found = next(s.simulator for s in host.stubs.values() if isinstance(s.simulator, kind))
    assert isinstance(found, kind)
    return found


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://errors.example.com/ecom/{slug}"
    return body


# --- inventory-svc ---------------------------------------------------------------------------


@dataclass
class Inventory:
    sim: InventorySimulator
    clock: Clock
    client: httpx.AsyncClient

    async def reserve(
        self, items: dict[str, int], order: str = ORDER, ttl: int | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "order_id": order,
            "items": [{"sku": sku, "quantity": qty} for sku, qty in items.items()],
        }
        if ttl is not None:
            body["ttl_seconds"] = ttl
        return await self.client.post("/reservations", json=body)

    async def stock(self, sku: str) -> dict[str, Any]:
        response = await self.client.get(f"/stock/{sku}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["available"] == body["on_hand"] - body["reserved"]
        return body


@asynccontextmanager
async def inventory(
    host_factory: HostFactory, stock: dict[str, int] | None = None, bus: Any = None
) -> AsyncIterator[Inventory]:
    settings = {} if stock is None else {"inventory-svc": {"stock": stock}}
    host = await host_factory(["inventory-svc"], settings=settings, bus=bus)
    sim, clock = simulator(host, InventorySimulator), Clock()
    sim.ctx.clock = clock
    async with asgi_client(host, "inventory-svc", **SERVICE) as client:
        yield Inventory(sim, clock, client)


async def test_default_stock_is_the_seed_data(host_factory: HostFactory) -> None:
    async with inventory(host_factory) as inv:
        seed = load_seed().stock
        assert seed == {"SKU-1001": 100, "SKU-2040": 100, "SKU-2042": 5, "SKU-3107": 0}
        for sku, units in seed.items():
            assert await inv.stock(sku) | {"updated_at": None} == {
                "sku": sku,
                "on_hand": units,
                "reserved": 0,
                "available": units,
                "updated_at": None,
            }
        assert_problem(await inv.client.get("/stock/SKU-9999"), 404, "not-found")
        health = await inv.client.get("/health")
        assert health.json() == {"status": "ok", "component": "inventory-svc"}


async def test_set_stock_creates_a_sku_and_never_drops_below_reserved(
    host_factory: HostFactory,
) -> None:
    async with inventory(host_factory, stock={}) as inv:
        created = await inv.client.put("/stock/SKU-4711", json={"on_hand": 5})
        assert created.status_code == 200, created.text
        assert created.json()["available"] == 5
        assert (await inv.reserve({"SKU-4711": 3})).status_code == 201
        below = await inv.client.put("/stock/SKU-4711", json={"on_hand": 2})
        assert "3 units reserved" in assert_problem(below, 409, "conflict")["detail"]
        exact = await inv.client.put("/stock/SKU-4711", json={"on_hand": 3})
        assert exact.json() | {"updated_at": None} == {
            "sku": "SKU-4711",
            "on_hand": 3,
            "reserved": 3,
            "available": 0,
            "updated_at": rfc3339(T0),
        } | {"updated_at": None}


async def test_only_one_of_ten_concurrent_orders_gets_the_last_unit(
    host_factory: HostFactory,
) -> None:
    async with inventory(host_factory, stock={"SKU-1001": 1}) as inv:
        answers = await asyncio.gather(
            *(inv.reserve({"SKU-1001": 1}, order=f"ord_Race{n:06d}") for n in range(10))
        )
        won = [a for a in answers if a.status_code == 201]
        lost = [a for a in answers if a.status_code == 409]
        assert (len(won), len(lost)) == (1, 9), [a.status_code for a in answers]
        for answer in lost:
            assert assert_problem(answer, 409, "out-of-stock")["skus"] == ["SKU-1001"]
        stock = await inv.stock("SKU-1001")
        assert (stock["reserved"], stock["available"]) == (1, 0)


async def test_a_reservation_holds_every_item_or_none(host_factory: HostFactory) -> None:
    async with inventory(host_factory, stock={"SKU-1001": 5, "SKU-2040": 1}) as inv:
        short = await inv.reserve({"SKU-1001": 2, "SKU-2040": 2})
        problem = assert_problem(short, 409, "out-of-stock")
        assert problem["skus"] == ["SKU-2040"]
        assert "SKU-2040 (requested 2, available 1)" in problem["detail"]
        unknown = await inv.reserve({"SKU-1001": 2, "SKU-9999": 1})
        assert "SKU-9999" in assert_problem(unknown, 404, "not-found")["detail"]
        for sku in ("SKU-1001", "SKU-2040"):
            assert (await inv.stock(sku))["reserved"] == 0
        held = await inv.reserve({"SKU-1001": 2, "SKU-2040": 1})
        assert held.status_code == 201, held.text
        assert held.json()["status"] == "HELD"
        assert held.json()["expires_at"] == rfc3339(T0 + timedelta(seconds=900))
        assert [(await inv.stock(s))["available"] for s in ("SKU-1001", "SKU-2040")] == [3, 0]


async def test_release_is_idempotent_and_a_released_reservation_cannot_commit(
    host_factory: HostFactory,
) -> None:
    bus, events = await subscribed("inventory")
    async with inventory(host_factory, stock={"SKU-1001": 5}, bus=bus) as inv:
        reservation = (await inv.reserve({"SKU-1001": 2})).json()
        path = f"/reservations/{reservation['reservation_id']}"
        without_reason = await inv.client.post(f"{path}/release")
        assert_problem(without_reason, 422, "validation-error")  # the event needs the reason
        for _ in range(2):
            released = await inv.client.post(f"{path}/release", json={"reason": "card_declined"})
            assert released.status_code == 200, released.text
            assert released.json() == reservation | {"status": "RELEASED"}
        assert (await inv.stock("SKU-1001"))["reserved"] == 0
        commit = await inv.client.post(f"{path}/commit")
        assert "RELEASED" in assert_problem(commit, 409, "conflict")["detail"]
        assert (await inv.client.get(path)).json()["status"] == "RELEASED"
        for missing in ("", "/release", "/commit"):
            call = inv.client.post if missing else inv.client.get
            body = {"json": {"reason": "card_declined"}} if missing == "/release" else {}
            answer = await call(f"/reservations/res_Unknown0000{missing}", **body)
            assert_problem(answer, 404, "not-found")
        await inv.sim.flush_outbox()
        await bus.drain(5)
    assert [r.message_type for r in events.records] == ["inventory.reserved", "inventory.released"]
    reserved, released_event = events.records
    assert {r.key for r in events.records} == {ORDER}
    assert reserved.value["source"] == "inventory-svc"
    assert reserved.value["data"] == {
        "reservation_id": reservation["reservation_id"],
        "items": [{"sku": "SKU-1001", "quantity": 2}],
        "expires_at": reservation["expires_at"],
    }
    assert released_event.value["data"]["reason"] == "card_declined"  # as the caller said


async def test_a_release_by_order_id_wins_over_a_reservation_that_lands_after_it(
    host_factory: HostFactory,
) -> None:
    """The caller never learnt whether its reserve was done: it releases by order id.
    Before the reserve lands, the release leaves a tombstone, and the late reserve holds
    nothing (201, RELEASED); after it, the release frees the held units."""
    bus, events = await subscribed("inventory")
    async with inventory(host_factory, stock={"SKU-1001": 5}, bus=bus) as inv:
        release = "/orders/{}/reservation/release"
        reason = {"json": {"reason": "inventory_unavailable"}}
        for _ in range(2):  # idempotent
            first = await inv.client.post(release.format(ORDER), **reason)
            assert (first.status_code, first.content) == (204, b"")
        late = await inv.reserve({"SKU-1001": 2})
        assert late.status_code == 201, late.text
        assert late.json()["status"] == "RELEASED"
        assert late.json()["items"] == [{"sku": "SKU-1001", "quantity": 2}]
        assert (await inv.stock("SKU-1001"))["reserved"] == 0
        again = await inv.client.post(release.format(ORDER), **reason)
        assert again.json() == late.json()  # the order's reservation, as it is

        other = "ord_Late00000002"
        held = (await inv.reserve({"SKU-1001": 3}, order=other)).json()
        assert (await inv.stock("SKU-1001"))["reserved"] == 3
        after = await inv.client.post(release.format(other), **reason)
        assert after.json() == held | {"status": "RELEASED"}
        assert (await inv.stock("SKU-1001"))["reserved"] == 0
        await inv.sim.flush_outbox()
        await bus.drain(5)
    # the tombstone's order published nothing; the other one its hold and its release
    assert [(r.key, r.message_type) for r in events.records] == [
        (other, "inventory.reserved"),
        (other, "inventory.released"),
    ]
    assert events.records[1].value["data"]["reason"] == "inventory_unavailable"


async def test_a_release_by_order_id_racing_its_reserve_never_leaves_units_held(
    host_factory: HostFactory,
) -> None:
    async with inventory(host_factory, stock={"SKU-1001": 50}) as inv:
        orders = [f"ord_Race{n:08d}" for n in range(10)]
        reason = {"reason": "inventory_unavailable"}
        await asyncio.gather(
            *(inv.reserve({"SKU-1001": 1}, order=order) for order in orders),
            *(
                inv.client.post(f"/orders/{order}/reservation/release", json=reason)
                for order in orders
            ),
        )
        assert (await inv.stock("SKU-1001"))["reserved"] == 0


async def test_commit_is_idempotent_and_releasing_it_puts_the_units_back(
    host_factory: HostFactory,
) -> None:
    bus, events = await subscribed("inventory")
    async with inventory(host_factory, stock={"SKU-1001": 5}, bus=bus) as inv:
        reservation = (await inv.reserve({"SKU-1001": 2})).json()
        path = f"/reservations/{reservation['reservation_id']}"
        for _ in range(2):
            committed = await inv.client.post(f"{path}/commit")
            assert committed.json() == reservation | {"status": "COMMITTED"}
            stock = await inv.stock("SKU-1001")
            assert (stock["on_hand"], stock["reserved"]) == (3, 0)
        cancelled = await inv.client.post(f"{path}/release", json={"reason": "cancelled_by_user"})
        assert cancelled.json()["status"] == "RELEASED"
        assert (await inv.stock("SKU-1001"))["on_hand"] == 5
        await inv.sim.flush_outbox()
        await bus.drain(5)
    assert [r.value["data"].get("reason") for r in events.of("inventory.released")] == [
        "cancelled_by_user"
    ]


async def test_a_commit_takes_each_skus_units_and_a_retried_reserve_finds_its_own(
    host_factory: HostFactory,
) -> None:
    """What the one-statement paths on PostgreSQL do as the transactions do: a commit
    takes every line's units (lines of one SKU summed, read from the stored items); a
    reserve sent again for an order that has its reservation answers that one, also
    when no units are left for a second hold; a commit that comes too late moves
    nothing."""
    async with inventory(host_factory, stock={"SKU-1001": 5, "SKU-2040": 1}) as inv:
        lines = [
            {"sku": "SKU-1001", "quantity": 2},
            {"sku": "SKU-2040", "quantity": 1},
            {"sku": "SKU-1001", "quantity": 1},
        ]
        body = {"order_id": ORDER, "items": lines}
        held = (await inv.client.post("/reservations", json=body)).json()
        committed = await inv.client.post(f"/reservations/{held['reservation_id']}/commit")
        assert committed.json() == held | {"status": "COMMITTED"}
        units = [await inv.stock(sku) for sku in ("SKU-1001", "SKU-2040")]
        assert [(u["on_hand"], u["reserved"]) for u in units] == [(2, 0), (0, 0)]

        first = (await inv.reserve({"SKU-1001": 2}, order="ord_Again0000")).json()
        for _ in range(2):  # 2 units left, both held by the first: the retry holds none
            again = await inv.reserve({"SKU-1001": 2}, order="ord_Again0000")
            assert (again.status_code, again.json()) == (201, first)
        assert (await inv.stock("SKU-1001"))["reserved"] == 2

        inv.clock.advance(900)  # due, not swept yet
        late = await inv.client.post(f"/reservations/{first['reservation_id']}/commit")
        assert "EXPIRED" in assert_problem(late, 409, "conflict")["detail"]
        stock = await inv.stock("SKU-1001")
        assert (stock["on_hand"], stock["reserved"]) == (2, 0)  # the sweep gave them back


class RecordedWrites:
    """A transaction's connection that notes each write (``update stock``...) it runs."""

    def __init__(self, conn: Any, writes: list[str]):
        self.conn, self.writes = conn, writes

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if statement.is_dml:
            self.writes.append(f"{statement.__visit_name__} {statement.table.name}")
        return await self.conn.execute(statement, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def test_stock_rows_are_each_transactions_last_writes(
    host_factory: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change of stock locks the SKU's row until the commit, and every order of that
    SKU waits for it: so in every transaction that changes stock -- reserving, failing
    to, committing, releasing a held or a committed reservation, by id or by order,
    expiring -- nothing but more stock changes comes after the first. On PostgreSQL a
    hold that came before the reservation's and the event's inserts kept the row locked
    over both (issue 15: the load run's orders queued on it). On PostgreSQL a reserve of
    one SKU and a commit are one statement each, no transaction of their own: the lock
    lasts that statement."""
    from ecom_harness.stubs.behaviours.inventory_svc import _COMMIT_IN_ONE, _RESERVE_IN_ONE

    async with inventory(host_factory, stock={"SKU-1001": 5, "SKU-2040": 1}) as inv:
        transactions: list[list[str]] = []
        plain, alone = inv.sim.transaction, inv.sim.ctx.db.execute
        in_one: list[str] = []  # the statements that changed stock alone

        @asynccontextmanager
        async def recorded() -> AsyncIterator[Any]:
            transactions.append([])
            async with plain() as conn:
                yield RecordedWrites(conn, transactions[-1])

        async def statement(statement: Any, parameters: Any = None) -> Any:
            result = await alone(statement, parameters)
            if statement is _COMMIT_IN_ONE or statement is _RESERVE_IN_ONE:
                in_one.append("commit" if statement is _COMMIT_IN_ONE else "reserve")
            return result

        monkeypatch.setattr(inv.sim, "transaction", recorded)
        monkeypatch.setattr(inv.sim.ctx.db, "execute", statement)
        held = (await inv.reserve({"SKU-1001": 1, "SKU-2040": 1})).json()
        assert (await inv.reserve({"SKU-2040": 1}, order="ord_Short00000")).status_code == 409
        path = f"/reservations/{held['reservation_id']}"
        assert (await inv.client.post(f"{path}/commit")).json()["status"] == "COMMITTED"
        release = {"reason": "cancelled_by_user"}
        assert (await inv.client.post(f"{path}/release", json=release)).json() == held | {
            "status": "RELEASED"
        }
        second = (await inv.reserve({"SKU-1001": 2}, order="ord_Second0000")).json()
        path = f"/reservations/{second['reservation_id']}"
        assert (await inv.client.post(f"{path}/release", json=release)).json() == second | {
            "status": "RELEASED"
        }
        await inv.reserve({"SKU-1001": 1}, order="ord_ByOrder000")
        by_order = await inv.client.post("/orders/ord_ByOrder000/reservation/release", json=release)
        assert by_order.json()["status"] == "RELEASED"
        await inv.reserve({"SKU-1001": 1}, order="ord_Expires000", ttl=10)
        inv.clock.advance(10)
        assert await inv.sim.expire_due() == 1
        stock = await inv.stock("SKU-1001")
        assert (stock["on_hand"], stock["reserved"]) == (5, 0)
    changing = [writes for writes in transactions if "update stock" in writes]
    # Five reserves (one failed) and five changes. On PostgreSQL the four reserves of
    # one SKU and the commit are one statement each; the failed one's held nothing, and
    # its transaction says why: six transactions are left.
    if modifies_in_with(inv.sim.ctx.db):
        assert in_one == ["reserve", "commit", "reserve", "reserve", "reserve"]
        assert len(changing) == 6, transactions
    else:
        assert (in_one, len(changing)) == ([], 10), transactions
    for writes in changing:
        first = writes.index("update stock")
        assert set(writes[first:]) == {"update stock"}, writes


async def test_a_held_reservation_expires_by_the_clock(host_factory: HostFactory) -> None:
    bus, events = await subscribed("inventory")
    async with inventory(host_factory, stock={"SKU-1001": 1}, bus=bus) as inv:
        reservation = (await inv.reserve({"SKU-1001": 1}, ttl=60)).json()
        assert reservation["expires_at"] == rfc3339(T0 + timedelta(seconds=60))
        path = f"/reservations/{reservation['reservation_id']}"
        inv.clock.advance(59)
        assert (await inv.client.get(path)).json()["status"] == "HELD"
        assert (await inv.stock("SKU-1001"))["available"] == 0
        inv.clock.advance(1)
        assert (await inv.client.get(path)).json()["status"] == "EXPIRED"
        assert (await inv.stock("SKU-1001"))["available"] == 1
        commit = await inv.client.post(f"{path}/commit")
        assert "EXPIRED" in assert_problem(commit, 409, "conflict")["detail"]
        unchanged = await inv.client.post(f"{path}/release", json={"reason": "card_declined"})
        assert unchanged.json() == reservation | {"status": "EXPIRED"}
        # expire_due sweeps on demand too, each reservation once
        again = (await inv.reserve({"SKU-1001": 1}, order="ord_Again0000", ttl=10)).json()
        inv.clock.advance(10)
        assert await inv.sim.expire_due() == 1
        assert await inv.sim.expire_due() == 0
        assert (await inv.client.get(f"/reservations/{again['reservation_id']}")).json()[
            "status"
        ] == "EXPIRED"
        await inv.sim.flush_outbox()
        await bus.drain(5)
    released = events.of("inventory.released")  # two keys: two partitions, either order
    assert sorted((r.key, r.value["data"]["reason"]) for r in released) == sorted(
        [(ORDER, "expired"), ("ord_Again0000", "expired")]
    )


async def test_the_sweep_reads_only_when_a_reservation_may_be_due(
    host_factory: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looking for due reservations before every call was a round trip of every call
    (issue 15): the sweep now runs when the earliest HELD expiry -- read after the last
    sweep, or of a reservation made since -- has come, and expiry stays on time."""
    async with inventory(host_factory, stock={"SKU-1001": 5}) as inv:
        sweeps = 0
        sweep = inv.sim.expire_due

        async def counted() -> int:
            nonlocal sweeps
            sweeps += 1
            return await sweep()

        monkeypatch.setattr(inv.sim, "expire_due", counted)
        late = (await inv.reserve({"SKU-1001": 1}, order="ord_Late00000", ttl=60)).json()
        assert sweeps == 1  # the first call: nothing read yet
        early = (await inv.reserve({"SKU-1001": 1}, order="ord_Early0000", ttl=30)).json()
        for _ in range(3):
            await inv.stock("SKU-1001")
        assert sweeps == 1  # nothing due before the earliest expiry
        inv.clock.advance(30)
        assert (await inv.client.get(f"/reservations/{early['reservation_id']}")).json()[
            "status"
        ] == "EXPIRED"  # made after the last read, and on time
        assert sweeps == 2
        await inv.stock("SKU-1001")
        assert sweeps == 2  # the next due, read at that sweep, is the later one's
        inv.clock.advance(30)
        assert (await inv.client.get(f"/reservations/{late['reservation_id']}")).json()[
            "status"
        ] == "EXPIRED"
        assert (await inv.stock("SKU-1001"))["reserved"] == 0
        await inv.sim.reset()
        await inv.stock("SKU-1001")
        assert sweeps == 4  # a reset forgets what was read


async def test_seed_sets_stock_and_refuses_what_the_spec_forbids(
    host_factory: HostFactory,
) -> None:
    async with inventory(host_factory, stock={"SKU-1001": 2}) as inv:
        await inv.sim.seed({"SKU-1001": 7, "SKU-5000": 1})
        assert (await inv.stock("SKU-1001"))["on_hand"] == 7
        assert (await inv.stock("SKU-5000"))["on_hand"] == 1
        assert (await inv.reserve({"SKU-1001": 4})).status_code == 201
        for bad in ({"SKU-1001": 3}, {"not-a-sku": 1}, {"SKU-1001": -1}):
            try:
                await inv.sim.seed(bad)
            except ValueError:
                continue
            raise AssertionError(f"seed({bad}) was accepted")
        await inv.sim.reset()
        assert (await inv.stock("SKU-1001"))["on_hand"] == 2  # the settings' stock again
        assert (await inv.client.get("/stock/SKU-5000")).status_code == 404


# --- payment-svc -----------------------------------------------------------------------------


@dataclass
class Payments:
    host: StubHost
    sim: PaymentSimulator
    client: httpx.AsyncClient
    exchanges: list[tuple[str, Exchange]]

    async def charge(
        self, key: str, *, order: str = ORDER, amount: int = 5198, method: str = "pm_card_visa"
    ) -> httpx.Response:
        body = {"order_id": order, "amount": amount, "currency": "eur", "payment_method": method}
        return await self.client.post("/payments", json=body, headers={"Idempotency-Key": key})

    def stripe_calls(self, operation: str) -> list[Exchange]:
        return [
            e for c, e in self.exchanges if c == "stripe" and e.response.operation_id == operation
        ]

    def use_stripe(self, client: httpx.AsyncClient) -> None:
        """Reach Stripe through ``client`` from now on (a fake, or the real stub again)."""
        self.sim.ctx.peers.add({"stripe": client})


@asynccontextmanager
async def payments(
    host_factory: HostFactory,
    bus: Any = None,
    deadlines: Deadlines | None = None,
    **settings: Any,
) -> AsyncIterator[Payments]:
    exchanges: list[tuple[str, Exchange]] = []
    host = await host_factory(
        ["payment-svc", "stripe"],
        settings={"payment-svc": settings},
        bus=bus,
        deadlines=deadlines or Deadlines(),
        recorder=lambda component, exchange: exchanges.append((component, exchange)),
    )
    async with asgi_client(host, "payment-svc", **SERVICE) as client:
        yield Payments(host, simulator(host, PaymentSimulator), client, exchanges)


def form_of(exchange: Exchange) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(exchange.request.body.decode()).items()}


async def test_a_charge_confirms_one_payment_intent(host_factory: HostFactory) -> None:
    async with payments(host_factory) as pay:
        created = await pay.charge("ord_7Hq2Kd9xLm-charge")
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["status"] == "succeeded"
        assert payment["provider_payment_id"].startswith("pi_")
        assert (payment["amount"], payment["refunded_amount"], payment["decline_code"]) == (
            5198,
            0,
            None,
        )
        assert (await pay.client.get(f"/payments/{payment['payment_id']}")).json() == payment
        assert_problem(await pay.client.get("/payments/pay_Unknown0000"), 404, "not-found")
        [call] = pay.stripe_calls("createPaymentIntent")
        assert call.response.status == 200
        assert call.request.headers["authorization"] == f"Bearer {DEFAULT_SECRET_KEY}"
        assert call.request.headers["idempotency-key"]
        assert form_of(call) | {"return_url": "set"} == {
            "amount": "5198",
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "metadata[order_id]": ORDER,
            "return_url": "set",
        }
        health = await pay.client.get("/health")
        assert health.json() == {"status": "ok", "component": "payment-svc"}


async def test_every_stripe_decline_is_a_card_declined_problem(host_factory: HostFactory) -> None:
    async with payments(host_factory) as pay:
        table = pay.host.stubs["stripe"].api.document.data["x-test-payment-methods"]
        expected = {m: t["decline_code"] for m, t in table.items() if t["outcome"] == "card_error"}
        expected["pm_card_threeDSecure2Required"] = "authentication_required"
        for n, (method, decline_code) in enumerate(sorted(expected.items())):
            order = f"ord_Decline{n:04d}"
            answer = await pay.charge(f"{order}-charge", order=order, method=method)
            problem = assert_problem(answer, 402, "card-declined")
            assert (problem["decline_code"], problem["order_id"]) == (decline_code, order), method
            assert problem["instance"] == f"/payments/{problem['payment_id']}"
            stored = (await pay.client.get(problem["instance"])).json()
            assert (stored["status"], stored["decline_code"]) == ("failed", decline_code)
            assert stored["provider_payment_id"].startswith("pi_")
        assert len(pay.stripe_calls("createPaymentIntent")) == len(expected)


async def test_a_retry_replays_the_first_answer_and_never_charges_twice(
    host_factory: HostFactory,
) -> None:
    async with payments(host_factory) as pay:
        first = await pay.charge("charge-1")
        replayed = await pay.charge("charge-1")
        assert (replayed.status_code, replayed.json()) == (201, first.json())
        concurrent = await asyncio.gather(
            *(pay.charge("charge-2", order="ord_Concurrent1") for _ in range(5))
        )
        assert len({str(a.json()) for a in concurrent}) == 1
        declined = [
            await pay.charge("charge-3", order="ord_Declined01", method="pm_card_chargeDeclined")
            for _ in range(2)
        ]
        assert [a.status_code for a in declined] == [402, 402]
        assert declined[0].json() == declined[1].json()
        assert len(pay.stripe_calls("createPaymentIntent")) == 3
        for order in (ORDER, "ord_Concurrent1", "ord_Declined01"):
            listed = await pay.client.get("/payments", params={"order_id": order})
            assert len(listed.json()["items"]) == 1


async def test_an_idempotency_key_expires_after_its_retention(host_factory: HostFactory) -> None:
    """A key's answer is replayed for ``idempotency_ttl_seconds`` (24 hours by default),
    then the key is unused again and its row pruned: the table of stored answers does not
    grow with every charge of a long run (issue 15)."""
    from sqlalchemy import func, select

    from ecom_harness.stubs.behaviours.payment_svc import IDEMPOTENCY

    async with payments(host_factory, idempotency_ttl_seconds=60) as pay:
        clock = Clock()
        pay.sim.ctx.clock = clock

        async def stored() -> int:
            async with pay.sim.ctx.db.connect() as conn:
                count = select(func.count()).select_from(IDEMPOTENCY)
                return int(await conn.scalar(count) or 0)

        first = await pay.charge("charge-1")
        clock.advance(59)
        assert (await pay.charge("charge-1")).json() == first.json()
        assert len(pay.stripe_calls("createPaymentIntent")) == 1
        clock.advance(2)
        again = await pay.charge("charge-1")
        assert again.status_code == 201
        assert again.json()["payment_id"] != first.json()["payment_id"]
        assert len(pay.stripe_calls("createPaymentIntent")) == 2
        assert await stored() == 1  # the expired row was replaced
        clock.advance(61)
        await pay.charge("charge-2", order="ord_Other00001")
        assert await stored() == 1  # "charge-1" pruned when "charge-2" was stored


async def test_a_key_reused_with_another_body_is_refused(host_factory: HostFactory) -> None:
    async with payments(host_factory) as pay:
        assert (await pay.charge("charge-1")).status_code == 201
        reused = await pay.charge("charge-1", amount=100)
        assert "charge-1" in assert_problem(reused, 422, "idempotency-key-reused")["detail"]
        assert len(pay.stripe_calls("createPaymentIntent")) == 1


async def test_refunds_in_part_in_full_and_never_beyond(host_factory: HostFactory) -> None:
    async with payments(host_factory) as pay:
        payment = (await pay.charge("charge-1", amount=4049)).json()
        path = f"/payments/{payment['payment_id']}/refund"
        part = await pay.client.post(path, json={"amount": 1450, "reason": "requested_by_customer"})
        assert part.status_code == 200, part.text
        assert (part.json()["status"], part.json()["refunded_amount"]) == ("succeeded", 1450)
        over = await pay.client.post(path, json={"amount": 2600})
        problem = assert_problem(over, 422, "validation-error")
        assert problem["errors"] == [
            {"pointer": "/amount", "message": "must not exceed the remaining amount 2599"}
        ]
        rest = await pay.client.post(path, json={"reason": "order_compensation"})
        assert (rest.json()["status"], rest.json()["refunded_amount"]) == ("refunded", 4049)
        assert_problem(await pay.client.post(path), 409, "conflict")
        first, second = (form_of(e) for e in pay.stripe_calls("createRefund"))
        intent = payment["provider_payment_id"]
        assert (first["payment_intent"], first["amount"], first["reason"]) == (
            intent,
            "1450",
            "requested_by_customer",
        )
        assert (second["amount"], second["metadata[reason]"]) == ("2599", "order_compensation")
        assert "reason" not in second  # not one of Stripe's refund reasons
        declined = await pay.charge("charge-2", method="pm_card_chargeDeclined")
        failed_path = f"/payments/{declined.json()['payment_id']}/refund"
        assert (
            "nothing to refund"
            in assert_problem(await pay.client.post(failed_path), 409, "conflict")["detail"]
        )
        assert_problem(await pay.client.post("/payments/pay_Unknown0000/refund"), 404, "not-found")
        assert len(pay.stripe_calls("createRefund")) == 2


async def test_stripe_unreachable_is_a_provider_error_and_safe_to_retry(
    host_factory: HostFactory,
) -> None:
    exchanges: list[tuple[str, Exchange]] = []
    host = await host_factory(
        ["payment-svc", "stripe"],
        peer_urls={"stripe": "http://127.0.0.1:9"},  # nothing listens: connection refused
        recorder=lambda component, exchange: exchanges.append((component, exchange)),
    )
    async with (
        asgi_client(host, "payment-svc", **SERVICE) as client,
        asgi_client(host, "stripe") as stripe,
    ):
        pay = Payments(host, simulator(host, PaymentSimulator), client, exchanges)
        down = await pay.charge("charge-1")
        assert (
            "could not be reached" in assert_problem(down, 502, "payment-provider-error")["detail"]
        )
        assert (await client.get("/payments")).json()["items"] == []
        pay.use_stripe(stripe)
        retried = await pay.charge("charge-1")
        assert retried.status_code == 201, retried.text
        assert len(pay.stripe_calls("createPaymentIntent")) == 1


async def _stripe_fails(scope: Any, receive: Any, send: Any) -> None:
    """Stripe answering 500 ``api_error``, in Stripe's wire format."""
    body = b'{"error": {"type": "api_error", "message": "Something went wrong."}}'
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _stripe_hangs(scope: Any, receive: Any, send: Any) -> None:
    """Stripe never answering."""
    await asyncio.Event().wait()


def fake_stripe(app: Callable[[Any, Any, Any], Awaitable[None]]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://stripe")


async def test_stripe_5xx_and_silence_are_provider_errors(host_factory: HostFactory) -> None:
    deadlines = Deadlines(stripe=0.05, stripe_settle_attempts=1)
    async with payments(host_factory, deadlines=deadlines) as pay:
        charged = (await pay.charge("charge-0")).json()
        for app, detail in (
            (_stripe_fails, "Stripe answered 500 (api_error): Something went wrong."),
            (
                _stripe_hangs,
                "Stripe did not answer within 0.05 s (2 attempt(s) with one Idempotency-Key); "
                "the outcome is unknown: retry with the same Idempotency-Key to settle it.",
            ),
        ):
            async with fake_stripe(app) as stripe:
                pay.use_stripe(stripe)
                charge = await pay.charge(f"charge-{app.__name__}")
                assert assert_problem(charge, 502, "payment-provider-error")["detail"] == detail
                refund = await pay.client.post(f"/payments/{charged['payment_id']}/refund")
                assert assert_problem(refund, 502, "payment-provider-error")["detail"] == detail
        unchanged = (await pay.client.get(f"/payments/{charged['payment_id']}")).json()
        assert unchanged == charged
        listed: MutableMapping[str, Any] = (await pay.client.get("/payments")).json()
        assert [p["payment_id"] for p in listed["items"]] == [charged["payment_id"]]


async def test_every_outcome_is_published_once_keyed_by_order(host_factory: HostFactory) -> None:
    bus, events = await subscribed("payments")
    async with payments(host_factory, bus=bus) as pay:
        paid = (await pay.charge("charge-1")).json()
        await pay.charge("charge-1")  # a replay publishes nothing
        declined = (
            await pay.charge("charge-2", order="ord_Bw5Nc8Yt3R", method="pm_card_chargeDeclined")
        ).json()
        refund = await pay.client.post(
            f"/payments/{paid['payment_id']}/refund", json={"amount": 1000}
        )
        assert refund.status_code == 200, refund.text
        await pay.sim.flush_outbox()
        await bus.drain(5)
    kinds = ("succeeded", "failed", "refunded")
    by_order: dict[str, list[str]] = {}  # in order per key (its partition), not across keys
    for record in events.records:
        by_order.setdefault(str(record.key), []).append(record.message_type)
    assert by_order == {
        ORDER: ["payment.succeeded", "payment.refunded"],
        "ord_Bw5Nc8Yt3R": ["payment.failed"],
    }
    data = {r.message_type: r.value["data"] for r in events.records}
    succeeded, failed, refunded = (data[f"payment.{kind}"] for kind in kinds)
    assert succeeded == {
        "payment_id": paid["payment_id"],
        "amount": 5198,
        "currency": "eur",
        "provider_payment_id": paid["provider_payment_id"],
    }
    assert failed == {
        "payment_id": declined["payment_id"],
        "amount": 5198,
        "currency": "eur",
        "decline_code": "generic_decline",
    }
    assert refunded["amount"] == 1000
    assert refunded["refund_id"].startswith("re_")


async def test_payments_list_newest_first_by_order_and_page(host_factory: HostFactory) -> None:
    async with payments(host_factory) as pay:
        ids = []
        for n, order in enumerate((ORDER, "ord_Other00001", ORDER)):
            ids.append((await pay.charge(f"charge-{n}", order=order)).json()["payment_id"])
        mine = (await pay.client.get("/payments", params={"order_id": ORDER})).json()
        assert [p["payment_id"] for p in mine["items"]] == [ids[2], ids[0]]
        first = (await pay.client.get("/payments", params={"limit": 2})).json()
        assert [p["payment_id"] for p in first["items"]] == [ids[2], ids[1]]
        rest = await pay.client.get(
            "/payments", params={"limit": 2, "cursor": first["next_cursor"]}
        )
        assert (
            [p["payment_id"] for p in rest.json()["items"]],
            rest.json()["next_cursor"],
        ) == ([ids[0]], None)
        forged = await pay.client.get("/payments", params={"cursor": "not-a-cursor"})
        assert_problem(forged, 422, "validation-error")
