"""Isolation between scenarios when the services are real: what a real service keeps or
does after a scenario must not decide the next one.

* A real gateway's Redis cache: the harness gives it a key namespace (``env``:
  ``REDIS_KEY_PREFIX``) and empties it, and only it, when each scenario starts; so
  cache-hit's first read misses even after happy-path filled the cache, and the rest of
  the database is left as it was.
* Late events: a real publisher may relay an order's event after its scenario ended (an
  outbox, a redelivery). An entry naming an order of an earlier scenario is shown in the
  next scenario's journal, marked late, and judged by none of its expectations.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import yaml
from aiokafka import AIOKafkaProducer

from conftest import REPO, free_port_base
from ecom_harness.harness.isolation import key_shape, redis_key_prefix
from ecom_harness.harness.journal import Entry, Interaction, Journal, late_entries
from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.harness.player import play
from ecom_harness.harness.run_events import (
    ExpectationChecked,
    RunEvent,
    StepNote,
)
from ecom_harness.harness.runner import RunPlan, group_by_settings, run_scenarios
from ecom_harness.harness.scenario_files import load_scenarios
from ecom_harness.specs import spec_root
from ecom_harness.stubs import Backends


def failures(events: list[RunEvent]) -> list[str]:
    return [
        f"{e.scenario}: {e.result.what}: expected {e.result.expected}; observed {e.result.observed}"
        for e in events
        if isinstance(e, ExpectationChecked) and not e.result.passed
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_a_real_gateways_cache_is_cold_again_when_the_next_scenario_starts(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """happy-path reads SKU-1001 through a real gateway, which caches it in Redis; the
    next scenario, cache-hit, needs its first read to miss. Keys outside the gateway's
    namespace -- a user's own, another port base's -- survive the run untouched."""
    assert backends.redis_url is not None
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))  # the corpus's real gateway
    base = free_port_base()
    redis = aioredis.Redis.from_url(backends.redis_url)
    others = {
        "cart:42": b"the user's own",
        f"{redis_key_prefix(base + 1, 'api-gateway')}product:SKU-1001": b"another run's",
    }
    try:
        await redis.mset(others)
        scenarios = load_scenarios()
        plan = RunPlan(
            [scenarios["happy-path"], scenarios["cache-hit"]],
            MeshOptions(port_base=base, redis_url=backends.redis_url),
            real_commands={"api-gateway": f"{sys.executable} -m real_services api-gateway:correct"},
            seed=3,
        )
        events: list[RunEvent] = []
        result = await run_scenarios(plan, [events.append])
        assert result.setup_error is None
        assert [s.name for s in result.scenarios] == ["happy-path", "cache-hit"]
        assert result.exit_code == 0, "\n".join(failures(events))
        for key, value in others.items():
            assert await redis.get(key) == value, key
        namespace = redis_key_prefix(base, "api-gateway")
        # the gateway kept its keys in the namespace env gave it (cache-hit's product)
        assert await redis.exists(f"{namespace}product:SKU-1001")
    finally:
        await redis.aclose()


def _order_placed(journal: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in journal if e["kind"] == "event" and e["message_type"] == "order.placed")


async def _relay_late(mesh: Mesh, placed: dict[str, Any], kafka: bool) -> None:
    """Publish the earlier scenario's ``order.placed`` again, late: on the in-process bus
    as order-svc; on Kafka straight to the broker, as a real order-svc's outbox would,
    together with a record of that order that breaks the AsyncAPI schema."""
    if not kafka:
        assert mesh.bus is not None
        await mesh.bus.publish("orders", placed["key"], placed["value"], publisher="order-svc")
        return
    broken = {**placed["value"], "id": "evt_Late0000001", "data": {"total": 1}}
    producer = AIOKafkaProducer(bootstrap_servers=mesh.bootstrap_servers)
    await producer.start()
    try:
        for value in (placed["value"], broken):
            await producer.send_and_wait("orders", orjson.dumps(value), key=placed["key"].encode())
    finally:
        await producer.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kafka", [False, True], ids=["in-process", "kafka"])
async def test_a_late_event_of_an_earlier_scenario_is_shown_but_not_judged(kafka: bool) -> None:
    """payment-failure, then happy-path on one mesh; between them order-svc relays
    payment-failure's ``order.placed`` again (and, on Kafka, a broken record of that
    order). happy-path expects exactly one ``order.placed`` and no spec violation: the
    late records and what notify-svc does with them are payment-failure's."""
    scenarios = load_scenarios()
    first, second = scenarios["payment-failure"], scenarios["happy-path"]
    ((settings, _),) = group_by_settings([first, second])
    options = MeshOptions(settings=settings, kafka="local" if kafka else None)
    async with Mesh(options) as mesh:
        await mesh.reset()
        earlier = await play(mesh, first, [], seed=1)
        assert earlier.passed, [e for e in earlier.expectations if not e.passed]
        placed = _order_placed(earlier.journal)

        await mesh.reset()  # as the runner does between scenarios
        await _relay_late(mesh, placed, kafka)
        events: list[RunEvent] = []
        later = await play(mesh, second, [events.append], seed=1)

    assert later.passed, "\n".join(failures(events))
    late = [e for e in later.journal if e.get("late")]
    assert any(e["kind"] == "event" and e["key"] == placed["key"] for e in late)
    if kafka:  # the broken one is shown, with its violation, and blamed on nobody here
        assert any(e.get("violations") for e in late)
    own = _order_placed([e for e in later.journal if not e.get("late")])
    assert own["key"] != placed["key"]
    notes = [e.say for e in events if isinstance(e, StepNote) and e.step == "journal"]
    assert any(placed["key"] in note and "earlier scenario" in note for note in notes)


def _exchange(seq: int, edge: str, path: str, answer: Any = None) -> Interaction:
    caller, callee = edge.split("->")
    return Interaction(
        seq, 0.0, caller, callee, None, "GET", path, "", {}, None, 200, {}, answer, 1.0
    )


def test_only_keys_this_scenarios_client_never_named_make_an_entry_late() -> None:
    """An earlier scenario's key is late only where this scenario's own client did not
    name it too: a SKU both scenarios order stays this one's."""
    earlier = {"ord_AAAAAAAAAAAA", "SKU-1001"}
    entries: list[Entry] = [
        _exchange(1, "client->api-gateway", "/v1/products/SKU-1001"),
        _exchange(2, "api-gateway->catalog-svc", "/products/SKU-1001"),
        _exchange(3, "notify-svc->order-svc", "/orders/ord_AAAAAAAAAAAA"),
        _exchange(4, "client->api-gateway", "/v1/orders", {"order_id": "ord_BBBBBBBBBBBB"}),
        _exchange(5, "notify-svc->order-svc", "/orders/ord_BBBBBBBBBBBB"),
    ]
    own = lambda e: e.edge == "client->api-gateway"  # noqa: E731
    assert late_entries(entries, earlier, own) == {3}
    assert late_entries(entries, set(), own) == set()


def test_retire_remembers_the_orders_an_exchange_named_before_any_event_did() -> None:
    """An order answered by createOrder whose events a real order-svc had not relayed
    yet when the next scenario began: its id (shaped like the AsyncAPI record key) is
    remembered from the exchange; other strings of it are not."""
    asyncapi = yaml.safe_load((spec_root() / "asyncapi" / "commerce-events.yaml").read_text())
    key_like = key_shape(asyncapi)
    journal = Journal()
    journal.add(_exchange(1, "api-gateway->order-svc", "/orders", {"order_id": "ord_CCCCCCCCCCCC"}))
    journal.retire(key_like)
    assert journal.entries() == []
    assert journal.earlier_keys == {"ord_CCCCCCCCCCCC"}
