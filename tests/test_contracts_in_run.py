"""Scenarios are contract checks: during ``run`` every journaled interaction on an edge with
a pact must match it, and a mismatch fails the scenario with Pact's own description."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.harness.contracts import load_pacts
from ecom_harness.harness.contracts.generate import harvest
from ecom_harness.harness.contracts.judging import JudgedAhead
from ecom_harness.harness.contracts.scenario_check import judge_journal
from ecom_harness.harness.scenario_files import load_scenarios

PACTS = load_pacts(REPO / "contracts")
ECOM_HARNESS = [sys.executable, "-c", "from ecom_harness.cli.main import main; main()"]


@pytest.fixture(scope="module")
def happy_journal() -> list[dict[str, Any]]:
    (journal,) = asyncio.run(harvest({"happy-path": load_scenarios()["happy-path"]}))
    return journal.entries


def test_a_correct_run_matches_every_pact(happy_journal: list[dict[str, Any]]) -> None:
    assert judge_journal(happy_journal, PACTS) == []


def test_a_consumer_request_the_pact_does_not_describe_is_a_mismatch(
    happy_journal: list[dict[str, Any]],
) -> None:
    """order-svc as a consumer: a reservation request without its service token."""
    journal = copy.deepcopy(happy_journal)
    for entry in journal:
        if entry.get("kind") == "http" and entry["callee"] == "inventory-svc":
            entry["request_headers"].pop("x-service-token", None)
    found = judge_journal(journal, PACTS)
    mine = [m for m in found if m.edge == "order-svc->inventory-svc" and m.side == "consumer"]
    assert mine, found
    assert any("x-service-token" in m.message.lower() for m in mine)


def test_a_provider_answer_the_pact_does_not_describe_is_a_mismatch(
    happy_journal: list[dict[str, Any]],
) -> None:
    """order-svc as a provider: the order it answers the gateway with a string total."""
    journal = copy.deepcopy(happy_journal)
    for entry in journal:
        if (
            entry.get("kind") == "http"
            and entry.get("operation_id") == "createOrder"
            and entry["caller"] == "api-gateway"
            and entry["status"] == 201
        ):
            entry["response_body"]["total_amount"] = "7797"
    found = judge_journal(journal, PACTS)
    mine = [m for m in found if m.edge == "api-gateway->order-svc" and m.side == "provider"]
    assert mine, found
    assert "$.total_amount" in mine[0].message


def test_an_event_the_message_pact_does_not_describe_is_a_mismatch(
    happy_journal: list[dict[str, Any]],
) -> None:
    """order-svc as a publisher: order.confirmed without the amount notify-svc reads."""
    journal = copy.deepcopy(happy_journal)
    for entry in journal:
        if entry.get("kind") == "event" and entry["message_type"] == "order.confirmed":
            entry["value"]["data"]["total_amount"] = "a lot"
    found = judge_journal(journal, PACTS)
    assert any(m.edge == "notify-svc->order-svc" and "total_amount" in m.message for m in found)


def test_judging_ahead_while_waiting_gives_the_whole_journal_s_verdict(
    happy_journal: list[dict[str, Any]],
) -> None:
    """JudgedAhead (a scenario's HTTP exchanges judged during its wait, the rest at the
    end): every exchange judged once, events only at the end, and the same mismatches --
    a broken request before the wait, a broken event -- as judging it all at the end."""
    journal = copy.deepcopy(happy_journal)
    for entry in journal:
        if entry.get("kind") == "http" and entry["callee"] == "inventory-svc":
            entry["request_headers"].pop("x-service-token", None)
        if entry.get("kind") == "event" and entry["message_type"] == "order.confirmed":
            entry["value"]["data"]["total_amount"] = "a lot"
    first_reservation = next(
        i for i, e in enumerate(journal) if e.get("operation_id") == "reserveStock"
    )
    before_wait = journal[: first_reservation + 1]
    judged: list[list[int]] = []

    async def judge(part: list[dict[str, Any]], pacts: list[Any]) -> list[Any]:
        judged.append([e["seq"] for e in part])
        return await asyncio.to_thread(judge_journal, part, pacts)

    async def in_parts() -> list[Any]:
        verdicts = JudgedAhead(judge, PACTS)
        verdicts.ahead(before_wait)
        return await verdicts.finish(journal)

    found = asyncio.run(in_parts())
    expected_ahead = [e["seq"] for e in before_wait if e["kind"] == "http"]
    assert len(judged) == 2 and expected_ahead in judged
    (rest,) = [part for part in judged if part != expected_ahead]
    ahead = expected_ahead
    assert sorted(ahead + rest) == sorted(e["seq"] for e in journal)
    assert not {e["seq"] for e in journal if e["kind"] == "event"} & set(ahead)
    whole = judge_journal(journal, PACTS)
    key = sorted((m.edge, m.side) for m in found)
    assert key == sorted((m.edge, m.side) for m in whole)
    assert ("order-svc->inventory-svc", "consumer") in key
    assert ("notify-svc->order-svc", "provider") in key


def _pacts_expecting_another_name(tmp_path: Path) -> Path:
    """A copy of the pacts where catalog-svc's product must have another name."""
    folder = tmp_path / "pacts"
    shutil.copytree(REPO / "contracts", folder, ignore=shutil.ignore_patterns("*.py"))
    path = folder / "api-gateway-catalog-svc.json"
    pact = json.loads(path.read_text())
    answer = pact["interactions"][0]["response"]
    answer["body"]["content"]["name"] = "Something Else"
    answer["matchingRules"]["body"].pop("$.name", None)  # now a literal the provider breaks
    path.write_text(json.dumps(pact))
    return folder


def test_run_fails_a_scenario_through_a_pact_mismatch(tmp_path: Path) -> None:
    """The command: a pact that expects another product name than catalog-svc answers
    fails cache-hit, with the pact's mismatch in the report."""
    folder = _pacts_expecting_another_name(tmp_path)
    report = tmp_path / "run.json"
    result = CliRunner().invoke(
        cli, ["run", "cache-hit", "--pacts", str(folder), "--json", str(report)]
    )
    assert result.exit_code == 1, (result.output, result.exc_info)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    text = report.read_text()
    assert "run:pact:api-gateway->catalog-svc" in text
    assert "Something Else" in text
    clean = CliRunner().invoke(cli, ["run", "cache-hit"])
    assert clean.exit_code == 0, clean.output


def test_pacts_judged_in_the_run_s_worker_process_fail_it_the_same(tmp_path: Path) -> None:
    """The command as a user runs it (its own process, with no other thread: the pacts
    are judged in a forked worker) finds the same mismatch."""
    folder = _pacts_expecting_another_name(tmp_path)
    report = tmp_path / "run.json"
    done = subprocess.run(
        [*ECOM_HARNESS, "run", "cache-hit", "--pacts", str(folder), "--json", str(report)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = report.read_text()
    assert "run:pact:api-gateway->catalog-svc" in text
    assert "Something Else" in text
