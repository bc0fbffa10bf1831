"""``contracts generate``: the committed pacts are what the scenarios make, byte for byte;
``--check`` finds stale ones; and the consumer side is genuinely exercised -- a pact
that does not describe what the consumer's simulator sends fails generation."""

from __future__ import annotations

import asyncio
import shutil
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.harness.contracts import SpecIndex, load_pacts, stale_pacts
from ecom_harness.harness.contracts.build import build_pacts
from ecom_harness.harness.contracts.canonical import Canonicalizer, is_dynamic
from ecom_harness.harness.contracts.consumer_run import exercise_consumers
from ecom_harness.harness.contracts.generate import SEED, harvest
from ecom_harness.harness.contracts.plan import plan_pacts
from ecom_harness.harness.scenario_files import load_scenarios
from ecom_harness.specs import spec_root

COMMITTED = REPO / "contracts"


def test_committed_pacts_are_regenerated_byte_identically() -> None:
    """What CI runs: the scenarios, the plans, the consumers against the mock servers,
    and the result compared byte for byte with contracts/."""
    result = CliRunner().invoke(cli, ["contracts", "generate", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_every_edge_of_the_scenarios_has_a_pact() -> None:
    pacts = load_pacts(COMMITTED)
    edges = {p.edge for p in pacts}
    for edge in (
        "api-gateway->order-svc",
        "api-gateway->user-svc",
        "api-gateway->catalog-svc",
        "order-svc->inventory-svc",
        "order-svc->payment-svc",
        "order-svc->shipping-svc",
        "payment-svc->stripe",
        "notify-svc->sendgrid",
        "notify-svc->twilio",  # happy-path's customer has a phone
        "notify-svc->order-svc",  # messages: the publisher is the provider
        "notify-svc->payment-svc",
        "catalog-svc->inventory-svc",
    ):
        assert edge in edges
    kinds = {i.kind for p in pacts for i in p.interactions}
    assert kinds == {"http", "message"}
    states = [s for p in pacts for i in p.interactions for s in i.states]
    assert any('inventory-svc holds {"SKU-1001":20}' in s for s in states)


def test_rfc_2822_dates_and_days_near_today_are_canonical_like_rfc_3339_times() -> None:
    """Twilio answers ``date_created`` as an RFC 2822 date, shipping-svc an estimated
    delivery a few working days from today: a pact holding the run's own would change
    every second, or every day. A day far from today (Twilio's API version) is a
    constant and stays."""
    canonical = Canonicalizer()
    for made_up in ("Sun, 29 Nov 2026 23:47:32 +0000", "Mon, 30 Nov 2026 00:00:01 -0500"):
        assert is_dynamic(made_up)
        assert canonical.string(made_up) == "Wed, 01 Jan 2025 00:00:00 +0000"
    assert canonical.string("sent Sun, 29 Nov 2026 23:47:32 +0000") == (
        "sent Wed, 01 Jan 2025 00:00:00 +0000"
    )
    estimate = (date.today() + timedelta(days=4)).isoformat()
    assert is_dynamic(estimate)
    assert canonical.string(f"expected on {estimate}.") == "expected on 2025-01-01."
    for constant in ("2010-04-01", "/2010-04-01/Accounts/AC0/Messages.json"):
        assert not is_dynamic(constant)
        assert canonical.string(constant) == constant


def test_check_names_stale_missing_and_orphaned_pacts(tmp_path: Path) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(COMMITTED, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (copy / "order-svc-inventory-svc.json").write_bytes(b"{}\n")
    (copy / "api-gateway-catalog-svc.json").unlink()
    (copy / "nobody-nothing.json").write_text("{}")
    files = {p.name: p.read_bytes() for p in COMMITTED.glob("*.json")}
    stale = "\n".join(stale_pacts(copy, files))
    assert "order-svc-inventory-svc.json: out of date" in stale
    assert "api-gateway-catalog-svc.json: missing" in stale
    assert "nobody-nothing.json: no scenario exercises this edge" in stale


def test_responses_match_by_the_provider_schema_not_by_literal_ids() -> None:
    pact = next(p for p in load_pacts(COMMITTED) if p.edge == "api-gateway->order-svc")
    created = next(
        i for i in pact.interactions if i.description.startswith("createOrder answered 201")
    )
    rules = created.response["matchingRules"]["body"]
    assert rules["$.order_id"]["matchers"][0] == {
        "match": "regex",
        "regex": "^ord_[A-Za-z0-9]{8,32}$",
    }
    assert rules["$.total_amount"]["matchers"][0]["match"] == "integer"
    status = rules["$.status"]["matchers"][0]  # one of the values the schema declares
    assert status["match"] == "regex" and "CONFIRMED" in status["regex"]


def _cache_hit_pacts(tamper: bool) -> list[str]:
    scenarios = {"cache-hit": load_scenarios()["cache-hit"]}
    index = SpecIndex(spec_root())

    async def run() -> list[str]:
        journals = await harvest(scenarios)
        http, messages = plan_pacts(journals, {"client"})
        if tamper:  # the pact says the gateway asks for another product than it does
            plan = next(p for p in http if p.provider == "catalog-svc")
            plan.entry = dict(plan.entry, path="/products/SKU-9999")
        built = build_pacts(http, messages, index)
        edges = {
            j.scenario: {
                f"{e['caller']}->{e['callee']}" for e in j.entries if e.get("kind") == "http"
            }
            for j in journals
        }
        return await exercise_consumers(built, scenarios, SEED, index, edges)

    return asyncio.run(run())


def test_the_consumer_runs_against_the_mock_server() -> None:
    assert _cache_hit_pacts(tamper=False) == []
    problems = _cache_hit_pacts(tamper=True)
    assert any(p.startswith("api-gateway-catalog-svc:") and "SKU-1001" in p for p in problems), (
        problems
    )
