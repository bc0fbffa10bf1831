"""``ecom-harness run``, ``scenarios`` and the scenario files, as a user meets them.

The whole run of the four shipped scenarios on embedded defaults goes through the real
console script once (exit code, plain output when not a TTY, --json, --junit validated
against a JUnit XML schema, --journal); the rest use Click's runner in-process.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from conftest import REPO, free_port_base, plan_for
from ecom_harness.cli.main import cli

SHIPPED = ["cache-hit", "circuit-breaker", "happy-path", "payment-failure"]
JUNIT_XSD = REPO / "tests" / "data" / "junit.xsd"
CACHE_HIT = (REPO / "harness" / "scenarios" / "cache-hit.yaml").read_text()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.timeout(120)
def test_run_all_passes_on_embedded_defaults_with_every_report(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("run.json", "run.xml", "journal.jsonl")}
    environment = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ecom_harness.cli.main import main; main()",
            "run",
            "all",
            "--seed",
            "7",
            "--json",
            str(files["run.json"]),
            "--junit",
            str(files["run.xml"]),
            "--journal",
            str(files["journal.jsonl"]),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 of 4 scenario(s) passed" in done.stdout
    assert "\x1b[" not in done.stdout  # plain lines: not a terminal, and NO_COLOR
    report = json.loads(files["run.json"].read_text())
    assert [s["name"] for s in report["scenarios"]] == SHIPPED
    assert report["passed"] and all(s["passed"] for s in report["scenarios"])
    expectations = sum(len(s["expectations"]) for s in report["scenarios"])
    # every scenario ends with the journal-wide check, and each names what it checked
    for scenario in report["scenarios"]:
        assert scenario["expectations"][-1]["id"] == "run:no-violations"
    # JUnit: valid against the schema CI systems read; one case per expectation
    tree = etree.parse(str(files["run.xml"]))
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    assert schema.validate(tree), schema.error_log
    assert len(tree.findall(".//testcase")) == expectations
    assert tree.getroot().get("failures") == "0"
    journal = [json.loads(line) for line in files["journal.jsonl"].read_text().splitlines()]
    assert {entry["scenario"] for entry in journal} == set(SHIPPED)
    assert any(e["kind"] == "event" and e["message_type"] == "order.confirmed" for e in journal)


def test_junit_failures_carry_expected_observed_and_stay_schema_valid(tmp_path: Path) -> None:
    """A scenario whose expectation cannot hold: exit 1, the failure named on the console
    with expected and observed, and a <failure> in JUnit."""
    wrong = CACHE_HIT.replace("name: cache-hit", "name: cache-hit-wrong").replace(
        "headers: {X-Cache: MISS}", "headers: {X-Cache: HIT}"
    )
    (tmp_path / "wrong.yaml").write_text(wrong)
    junit = tmp_path / "run.xml"
    code, out, _err = invoke(
        "run", "cache-hit-wrong", "--scenarios", str(tmp_path), "--junit", str(junit)
    )
    assert code == 1, out
    assert "FAIL the first request misses the cache and reads catalog-svc: header X-Cache" in out
    assert "expected: 'HIT'" in out and "observed: expected 'HIT', found 'MISS'" in out
    tree = etree.parse(str(junit))
    assert etree.XMLSchema(etree.parse(str(JUNIT_XSD))).validate(tree)
    (failure,) = tree.findall(".//failure")
    assert "found 'MISS'" in (failure.text or "")
    assert tree.getroot().get("failures") == "1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\ntitle: [unclosed\n", "line 3, column 1: did not find expected"),
        (
            "name: bad\ntitle: t\ndescription: d\nsteps:\n  - requst: {method: GET, path: /}\n",
            "#/steps/0: Additional properties are not allowed ('requst' was unexpected)",
        ),
        (
            "name: Bad Name\ntitle: t\ndescription: d\nsteps: [{wait: {seconds: 1}}]\n",
            "#/name: 'Bad Name' does not match",
        ),
        (
            CACHE_HIT,  # a second file of the same name
            "#/name: scenario 'cache-hit' is already defined in",
        ),
    ],
    ids=["yaml", "schema", "name", "duplicate"],
)
def test_a_bad_scenario_file_is_one_line_and_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "broken.yaml").write_text(content)
    code, _out, err = invoke("run", "all", "--scenarios", str(tmp_path))
    assert code == 2
    line = one_line(err)
    assert "broken.yaml" in line and message in line, line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "happy-path", "nope"], "unknown scenario 'nope' (known: cache-hit,"),
        (["scenarios", "show", "nope"], "unknown scenario 'nope'"),
        (["run", "--real-cmd", "order-svc"], "'order-svc' is not NAME=COMMAND"),
        (["run", "--scenarios", "/no/such/dir"], "/no/such/dir: not a directory of scenario"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, _out, err = invoke(*args)
    assert code == 2
    assert message in err, err


def test_a_real_url_where_nothing_answers_is_a_setup_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _out, err = invoke(
        "run", "cache-hit", "--real", f"stripe=http://127.0.0.1:{port}", "--startup-timeout", "0.5"
    )
    assert code == 2
    assert f"--real stripe=http://127.0.0.1:{port}: nothing answers on 127.0.0.1:{port}" in (
        one_line(err)
    )


def test_real_cmd_needs_fixed_ports() -> None:
    code, _out, err = invoke("run", "cache-hit", "--real-cmd", "catalog-svc=true")
    assert code == 2
    assert "--real-cmd needs --port-base" in one_line(err)


def test_scenarios_list_and_show_in_words() -> None:
    code, out, _err = invoke("scenarios", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == SHIPPED
    code, out, _err = invoke("scenarios", "show", "circuit-breaker")
    assert code == 0
    assert "open_circuit: the next order fails at once" in out
    assert "answered in under ${timed_out_ms * 0.5} ms" in out
    assert "never (during open_circuit): no request reaches inventory-svc" in out
    assert "no spec violation anywhere in the journal" in out


def test_specs_lint_checks_scenario_files_by_file_and_pointer(tmp_path: Path) -> None:
    bad = CACHE_HIT.replace("name: cache-hit", "name: cache-typos").replace(
        "edge: api-gateway->catalog-svc\n      during: first_read",
        "edge: api-gateway->catalog\n      during: first_reed",
    )
    bad = bad.replace("operation: getProduct}\n", "operation: getProdukt}\n", 1)
    (tmp_path / "typos.yaml").write_text(bad)
    code, out, _err = invoke("specs", "lint", "--scenarios", str(tmp_path))
    assert code == 1
    problems = [line.split(" ", 1)[0].split("#", 1)[1] for line in out.splitlines()]
    assert problems == [
        "/steps/0/request/operation:",
        "/expect/interactions/0/edge:",
        "/expect/interactions/0/during:",
    ], out
    assert "'api-gateway' has no operation 'getProdukt'" in out
    code, out, _err = invoke("specs", "lint")
    assert code == 0, out  # the shipped scenarios are clean


def test_specs_lint_checks_the_operations_an_only_list_names(tmp_path: Path) -> None:
    breaker = (REPO / "harness" / "scenarios" / "circuit-breaker.yaml").read_text()
    typo = breaker.replace("name: circuit-breaker", "name: breaker-typo").replace(
        "only: [reserveStock, commitReservation]", "only: [reserveStock, commitReservaton]"
    )
    assert typo != breaker
    (tmp_path / "typo.yaml").write_text(typo)
    code, out, _err = invoke("specs", "lint", "--scenarios", str(tmp_path))
    assert code == 1
    assert "#/expect/interactions/1/only/1: 'inventory-svc' has no operation" in out, out
    assert "'commitReservaton'" in out


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(120)
def test_real_cmd_starts_a_real_service_judges_it_and_stops_it() -> None:
    """stripe for real: a separate process (a stub server, started by the harness with
    the environment `env` gives it), waited for, judged like a stub, stopped."""
    base = free_port_base()
    main = shlex.quote("from ecom_harness.cli.main import main; main()")
    script = f'exec {shlex.quote(sys.executable)} -c {main} stubs serve stripe --port "$PORT"'
    code, out, err = invoke(
        "run",
        "payment-failure",
        "--port-base",
        str(base),
        "--real-cmd",
        f"stripe={shlex.join(['sh', '-c', script])}",
    )
    assert code == 0, out + err
    assert "real: stripe" in out
    assert _port_is_free(plan_for(base).components["stripe"])  # the service was stopped


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("sleep 30", "stripe ('sleep 30') did not answer on 127.0.0.1:{port} within 1 s"),
        ("false", "stripe ('false') exited with status 1 before answering on port {port}"),
        ("/no/such/program", "--real-cmd stripe: cannot start '/no/such/program'"),
    ],
    ids=["silent", "exits", "missing"],
)
def test_a_real_service_that_never_answers_is_a_setup_error(command: str, message: str) -> None:
    base = free_port_base()
    code, out, err = invoke(
        "run",
        "payment-failure",
        "--port-base",
        str(base),
        "--real-cmd",
        f"stripe={command}",
        "--startup-timeout",
        "1",
    )
    assert code == 2, out + err
    port = plan_for(base).components["stripe"]
    assert message.format(port=port) in one_line(err)
