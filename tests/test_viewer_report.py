"""`ecom-harness report JOURNAL --html FILE`: one self-contained HTML player from a saved
journal. (The browser plays it in test_viewer_browser.py; here: what goes in the file.)"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from ecom_harness.cli.main import cli
from ecom_harness.harness.journal import REDACTED, EventEntry, Interaction

NOISE = {"host": "127.0.0.1:1234", "connection": "keep-alive", "user-agent": "python-httpx"}


def interaction(seq: int, **changes: Any) -> dict[str, Any]:
    entry = Interaction(
        seq=seq,
        time=1_800_000_000 + seq / 100,
        caller="order-svc",
        callee="payment-svc",
        operation_id="createPayment",
        method="POST",
        path="/payments",
        query="",
        request_headers={**NOISE, "authorization": REDACTED, "idempotency-key": f"k-{seq}"},
        request_body={"order_id": f"ord_{seq}", "amount": 4200, "card": {"cvc": REDACTED}},
        status=201,
        response_headers={"content-type": "application/json"},
        response_body={"payment_id": f"pay_{seq}", "status": "succeeded"},
        duration_ms=12.3456,
    )
    return {**asdict(entry), **changes}


def event(seq: int) -> dict[str, Any]:
    entry = EventEntry(
        seq=seq,
        time=1_800_000_000 + seq / 100,
        publisher="order-svc",
        topic="orders",
        key=f"ord_{seq}",
        message_type="order.placed",
        event_id=f"evt_{seq}",
        partition=0,
        offset=seq,
        value={"id": f"evt_{seq}", "order_id": f"ord_{seq}"},
        groups=["notify-svc"],
    )
    return asdict(entry)


def write_journal(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    return path


def embedded(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="ecom-data">(.*?)</script>', html, re.S)
    assert found, "no embedded data"
    data: dict[str, Any] = orjson.loads(found.group(1))
    return data


def report(tmp_path: Path, entries: list[dict[str, Any]], *extra: str) -> tuple[str, str]:
    journal = write_journal(tmp_path / "journal.jsonl", entries)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(journal), "--html", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8"), result.output


def test_every_entry_is_in_the_page_in_order_with_its_details(tmp_path: Path) -> None:
    violated = interaction(3, violations=["response /body/status: 'oops' is not one of [...]"])
    timed_out = interaction(5, status=None, fault="timeout", error="no answer (timeout fault)")
    html, said = report(tmp_path, [interaction(1), event(2), violated, event(4), timed_out])
    (run,) = embedded(html)["runs"]
    assert [e["seq"] for e in run["entries"]] == [1, 2, 3, 4, 5]
    assert [e["kind"] for e in run["entries"]] == ["http", "event", "http", "event", "http"]
    first, published = run["entries"][0], run["entries"][1]
    assert (first["from"], first["to"], first["op"], first["status"]) == (
        "order-svc",
        "payment-svc",
        "createPayment",
        201,
    )
    assert first["req"]["body"]["card"]["cvc"] == REDACTED  # as recorded: never un-redacted
    assert first["req"]["headers"] == {"authorization": REDACTED, "idempotency-key": "k-1"}
    assert (published["from"], published["to"], published["groups"]) == (
        "order-svc",
        "kafka",
        ["notify-svc"],
    )
    assert run["entries"][2]["violations"] == violated["violations"]
    assert run["entries"][4]["status"] is None and run["entries"][4]["fault"] == "timeout"
    assert "5 entries" in said


def test_the_page_needs_no_network(tmp_path: Path) -> None:
    html, _ = report(tmp_path, [interaction(1)])
    assert "<style>" in html and "<script>" in html and "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert '<link rel="stylesheet"' not in html and "<script src=" not in html


def test_a_body_cannot_close_the_script_it_is_embedded_in(tmp_path: Path) -> None:
    sneaky = interaction(1, response_body={"note": "</script><script>alert(1)</script>"})
    html, _ = report(tmp_path, [sneaky])
    assert html.count("</script>") == 2  # the data block's and the player's own
    (run,) = embedded(html)["runs"]
    assert run["entries"][0]["res"]["body"]["note"] == "</script><script>alert(1)</script>"


def test_a_run_journal_becomes_one_run_per_scenario(tmp_path: Path) -> None:
    entries = [{**interaction(1), "scenario": "happy-path"}, {**event(2), "scenario": "happy-path"}]
    entries.append({**interaction(1), "scenario": "cache-hit"})
    html, _ = report(tmp_path, entries, "--title", "nightly")
    data = embedded(html)
    assert data["title"] == "nightly"
    assert [(r["name"], len(r["entries"])) for r in data["runs"]] == [
        ("happy-path", 2),
        ("cache-hit", 1),
    ]


def test_a_few_thousand_interactions_stay_a_few_megabytes(tmp_path: Path) -> None:
    entries = [interaction(i) if i % 4 else event(i) for i in range(1, 4001)]
    html, _ = report(tmp_path, entries)
    size = len(html.encode("utf-8"))
    assert len(embedded(html)["runs"][0]["entries"]) == 4000
    assert size < 4 * 1024 * 1024, f"{size / 1024 / 1024:.1f} MiB for 4000 entries"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json\n", ":1: not JSON"),
        (b"[1, 2]\n", ":1: a journal entry is a JSON object"),
        (b'{"kind": "http", "seq": 1}\n', ":1: an http entry without caller, callee, method, path"),
        (b'{"kind": "ftp", "seq": 1}\n', ":1: 'kind' is 'ftp', not 'http' or 'event'"),
        (b'\n{"kind": "event", "seq": "7", "publisher": "a", "topic": "t"}\n', ":2: 'seq' is not"),
    ],
)
def test_an_unusable_journal_is_one_line_naming_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    journal = tmp_path / "broken.jsonl"
    journal.write_bytes(content)
    result = CliRunner().invoke(cli, ["report", str(journal), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert f"{journal}{message}" in result.output
    assert not (tmp_path / "r.html").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope.jsonl"), "--html", "x"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    journal = write_journal(tmp_path / "j.jsonl", [interaction(1)])
    no_html = CliRunner().invoke(cli, ["report", str(journal)])
    assert no_html.exit_code == 2 and "--html" in no_html.output


def test_run_html_keeps_each_scenario_with_its_judged_expectations(tmp_path: Path) -> None:
    """The reporter behind `run --html`: expected against observed and the journal entries
    a failure concerns go with each expectation; a scenario that did not finish is an
    error; a run that could not start still leaves a page saying why."""
    from ecom_harness.harness import load_scenarios
    from ecom_harness.harness.run_events import (
        ExpectationResult,
        RunFinished,
        RunResult,
        ScenarioFinished,
        ScenarioResult,
    )
    from ecom_harness.harness.viewer import HtmlReporter
    from ecom_harness.specs import load_topology

    out = tmp_path / "run.html"
    reporter = HtmlReporter(out, load_topology(), load_scenarios())
    ok = ExpectationResult("step:a:status", "Anna logs in: status 200", True, "200", "200", (1,))
    bad = ExpectationResult(
        "run:absent", "catalog-svc is not called", False, "no call", "#2 getProduct", (2, 2)
    )
    cached = ScenarioResult("cache-hit", "Cached", [ok, bad], [interaction(1), interaction(2)])
    broken = ScenarioResult("happy-path", "Happy", [ok], [interaction(1)], error="seed refused")
    result = RunResult([cached, broken], setup_error="cannot run the mesh: port 20000 in use")
    for event in (ScenarioFinished("cache-hit", cached), ScenarioFinished("happy-path", broken)):
        reporter(event)
    assert not out.exists()  # written once, at the end
    reporter(RunFinished(result))
    data = embedded(out.read_text(encoding="utf-8"))
    assert data["title"] == "ecom-harness run: 0 of 2 scenarios passed"
    first, second, setup = data["runs"]
    assert (first["name"], first["status"], second["status"], setup["status"]) == (
        "cache-hit",
        "failed",
        "error",
        "error",
    )
    assert first["description"].startswith("A first product request misses")
    assert first["expectations"][1] == {
        "text": "catalog-svc is not called",
        "passed": False,
        "detail": "expected no call; observed #2 getProduct",
        "seqs": [2],
        "edge": None,
    }
    assert second["expectations"][-1]["detail"] == "seed refused"
    assert setup["expectations"][0]["detail"] == "cannot run the mesh: port 20000 in use"
