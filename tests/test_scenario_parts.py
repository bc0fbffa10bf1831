"""The scenario runner's parts on their own: placeholders, matchers, grouping scenarios
onto meshes, and timed steps running alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ecom_harness.harness import Scenario, Step
from ecom_harness.harness.journal import Interaction
from ecom_harness.harness.journal_checks import check_interactions
from ecom_harness.harness.matchers import MISSING, field_mismatches, mismatch
from ecom_harness.harness.quiet import Quiet
from ecom_harness.harness.runner import group_by_settings
from ecom_harness.harness.templating import TemplateError, render


def test_placeholders_keep_types_and_evaluate_small_expressions() -> None:
    names = {"price": 2599, "order": {"items": [{"sku": "SKU-1001"}]}, "id": "ord_1"}
    assert render("${price * 3}", names) == 7797
    assert render("${order.items[0].sku}", names) == "SKU-1001"
    assert render({"path": "/v1/orders/${id}", "n": ["${price - 99}"]}, names) == {
        "path": "/v1/orders/ord_1",
        "n": [2500],
    }
    with pytest.raises(TemplateError, match="nothing captured as 'nope'"):
        render("${nope}", names)
    with pytest.raises(TemplateError, match="uses Call"):
        render("${__import__('os')}", names)


def test_matchers_say_why_a_value_does_not_match() -> None:
    assert mismatch("CONFIRMED", "CONFIRMED") is None
    assert mismatch(1, "1") is None  # header text against a number
    assert mismatch(True, 1) == "expected true, found 1"
    assert mismatch({"present": False}, MISSING) is None
    assert mismatch({"present": True}, MISSING) == "missing"
    assert mismatch({"min": 1}, "0") == "expected at least 1, found '0'"
    assert (
        mismatch({"matches": "^ord_"}, "pay_1") == "expected text matching '^ord_', found 'pay_1'"
    )
    items = [{"user_id": "usr_b"}, {"user_id": "usr_a"}]
    assert mismatch({"each": {"/user_id": "usr_b"}}, items) == (
        "item 1: /user_id: expected 'usr_b', found 'usr_a'"
    )
    assert mismatch({"contains": {"/user_id": "usr_a"}}, items) is None
    assert field_mismatches({"/a/0": 1, "/b": 2}, {"a": [1]}) == ["/b: expected 2, found nothing"]


def _scenario(
    name: str, settings: dict[str, dict[str, object]], *, waits: bool = False
) -> Scenario:
    step = Step("s", "wait" if waits else "request", "", {}, "/steps/0")
    return Scenario(name, name, name, [step], given={"settings": settings}, source=Path(name))


def test_scenarios_share_a_mesh_when_their_settings_agree() -> None:
    a = _scenario("a", {"order-svc": {"inventory_timeout": 0.2}})
    b = _scenario("b", {"user-svc": {"scrypt_n": 1024}})
    c = _scenario("c", {"order-svc": {"inventory_timeout": 2}})  # contradicts a
    d = _scenario("d", {}, waits=True)
    groups = group_by_settings([a, b, c, d])
    assert [[s.name for s in members] for _settings, members in groups] == [["a", "b", "d"], ["c"]]
    assert groups[0][0] == {"order-svc": {"inventory_timeout": 0.2}, "user-svc": {"scrypt_n": 1024}}
    apart = group_by_settings([a, b, c, d], apart=lambda s: s.name == "d")
    assert [[s.name for s in members] for _settings, members in apart] == [
        ["a", "b"],
        ["c"],
        ["d"],
    ]


async def test_a_timed_step_runs_alone() -> None:
    quiet, log = Quiet(), []

    async def ordinary(name: str, hold: float) -> None:
        async with quiet.shared():
            log.append(f"{name} in")
            await asyncio.sleep(hold)
            log.append(f"{name} out")

    async def timed() -> None:
        await asyncio.sleep(0.01)  # arrives while "first" is in flight
        async with quiet.alone():
            log.append("timed in")
            await asyncio.sleep(0.02)
            log.append("timed out")

    async def late() -> None:
        await asyncio.sleep(0.02)  # arrives while the timed step waits: goes after it
        await ordinary("late", 0)

    await asyncio.gather(ordinary("first", 0.05), timed(), late())
    assert log == ["first in", "first out", "timed in", "timed out", "late in", "late out"]


def _call(seq: int, operation: str, status: int) -> Interaction:
    return Interaction(
        seq, 0.0, "order-svc", "inventory-svc", operation, "POST", "/x", "", {}, None,
        status, {}, None, 1.0,
    )  # fmt: skip


def test_only_a_list_of_operations_counts_just_those_calls() -> None:
    """The circuit breaker's probe: exactly one reserve and one commit, while releases of
    the timed-out orders may come between; a second reserve (two probes) fails."""
    spec = {
        "edge": "order-svc->inventory-svc",
        "only": ["reserveStock", "commitReservation"],
        "calls": [
            {"operation": "reserveStock", "status": 201},
            {"operation": "commitReservation", "status": 200},
        ],
    }
    probe = [
        _call(1, "reserveStock", 201),
        _call(2, "releaseOrderReservation", 204),
        _call(3, "releaseOrderReservation", 204),
        _call(4, "commitReservation", 200),
    ]
    passed = check_interactions("x", spec, probe)
    assert passed.passed, passed
    assert "no other reserveStock or commitReservation call" in passed.what
    second = _call(5, "reserveStock", 201)
    two_probes = check_interactions("x", spec, [*probe[:2], second, *probe[2:]])
    assert not two_probes.passed
    assert two_probes.expected == "2 calls" and two_probes.observed.startswith("3: ")
    assert not check_interactions("x", {**spec, "only": True}, probe).passed  # all of them
