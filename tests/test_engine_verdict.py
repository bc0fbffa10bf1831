"""A proxy in front of an in-process stub judges each exchange with the stub engine's
verdict (``EngineVerdict``) instead of validating the request and the answer again
(issue 15): its judgement must be the one it would have reached alone.

Every exchange of a mesh -- orders placed and declined, their events' mails, and
requests that break the callee's spec in each way the engine tells apart (a body that
breaks its schema, a body that is not JSON, an unknown path, missing credentials, a
documented error) -- is judged both ways, and the two must agree.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from ecom_harness.harness import proxy
from ecom_harness.harness.mesh import Mesh, MeshOptions
from mesh_flow import place_order, signed_in

TOKEN = {"X-Service-Token": "order-svc-token"}


async def test_a_proxy_judges_with_the_engines_verdict_as_it_would_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged: Counter[str] = Counter()
    disagreements: list[str] = []
    original = proxy.judge_exchange

    def both_ways(api: Any, request: Any, **options: Any) -> Any:
        verdict = options.pop("verdict", None)
        alone = original(api, request, **options)
        if verdict is None:
            return alone
        helped = original(api, request, verdict=verdict, **options)
        if helped != alone:
            disagreements.append(f"{request.method} {request.path}: {helped} != {alone}")
        judged["with a request violation" if alone.violations else "clean"] += 1
        judged["answer checked by the engine" if verdict.answer_checked else "answer judged"] += 1
        return helped

    monkeypatch.setattr(proxy, "judge_exchange", both_ways)
    settings = {"api-gateway": {"rate_limit": "100000/minute", "ip_rate_limit": "100000/minute"}}
    async with Mesh(MeshOptions(settings=settings)) as mesh:
        assert mesh.bus is not None and mesh.host is not None
        async with signed_in(mesh) as client:
            for n, card in enumerate(["pm_card_visa", "pm_card_chargeDeclined"]):
                placed = await place_order(client, f"verdict-{n}", card)
                assert placed.status_code in (201, 402), placed.text
        edge = mesh.url("order-svc->inventory-svc")
        async with httpx.AsyncClient(base_url=edge, timeout=30) as inventory:
            answers = [
                await inventory.post("/reservations", json={"order_id": 7}, headers=TOKEN),
                await inventory.post(
                    "/reservations",
                    content=b"{not json",
                    headers={**TOKEN, "content-type": "application/json"},
                ),
                await inventory.get("/nowhere", headers=TOKEN),
                await inventory.get("/stock/SKU-1001"),  # no credentials
                await inventory.get("/stock/SKU-9999", headers=TOKEN),  # a documented 404
                await inventory.get("/stock/SKU-1001", headers=TOKEN),
            ]
        assert [a.status_code for a in answers] == [422, 400, 404, 401, 404, 200]
        await mesh.bus.drain(10)

    assert not disagreements, "\n".join(disagreements)
    assert judged["with a request violation"] >= 2 and judged["clean"] >= 10, judged
    assert judged["answer checked by the engine"] >= 10 and judged["answer judged"] >= 2, judged
