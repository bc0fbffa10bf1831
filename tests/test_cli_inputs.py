"""Every bad input is one line with the documented exit code, checked before anything
starts: the same option gets the same check and the same answer in every command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecom_harness.cli.main import cli
from ecom_harness.specs import shipped_spec, spec_root

EXIT_PROBLEMS, EXIT_USAGE = 1, 2


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def assert_one_line(exit_code: int, output: str, expected: int, *words: str) -> None:
    assert exit_code == expected, output
    assert "Traceback" not in output
    if expected == EXIT_USAGE:
        assert len(output.strip().splitlines()) == 1, output
    for word in words:
        assert word in output, output


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["env", "order-svc", "--port-base", "20000"],
        ["stubs", "serve", "order-svc"],
    ],
)
@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--postgres", "foo", ("--postgres", "'foo' is not a postgresql URL")),
        ("--redis", "foo", ("--redis", "'foo' is not a redis or rediss or unix URL")),
    ],
)
def test_backend_options_are_checked_alike_by_every_command(
    command: list[str], option: str, value: str, words: tuple[str, ...]
) -> None:
    exit_code, output = run(*command, option, value)
    assert_one_line(exit_code, output, EXIT_USAGE, *words)


@contextmanager
def nobody_listening() -> Iterator[int]:
    """A loopback port bound, not listening, for as long as the block runs: nobody
    answers there."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        yield int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("option", "address", "message"),
    [
        ("--kafka", "127.0.0.1:{port}", "Kafka at 127.0.0.1:{port}: no broker answers there"),
        ("--redis", "redis://127.0.0.1:{port}/0", "Redis at redis://127.0.0.1:{port}/0: "),
        (
            "--postgres",
            "postgresql://postgres@127.0.0.1:{port}/postgres",
            "PostgreSQL at postgresql://postgres@127.0.0.1:{port}/postgres: ",
        ),
    ],
    ids=["kafka", "redis", "postgres"],
)
def test_a_backend_nobody_answers_at_is_named_by_its_address(
    option: str, address: str, message: str
) -> None:
    with nobody_listening() as port:
        exit_code, output = run("run", "happy-path", option, address.format(port=port))
    assert exit_code == EXIT_USAGE, output  # run's set-up error
    assert "Traceback" not in output
    assert f"cannot run the mesh: {message.format(port=port)}" in output, output


@pytest.mark.parametrize("command", [["up"], ["env", "order-svc", "--port-base", "20000"]])
def test_an_unknown_real_component_is_a_usage_error_for_up_and_env(command: list[str]) -> None:
    exit_code, output = run(*command, "--real", "nosuch=http://127.0.0.1:9000")
    assert_one_line(
        exit_code, output, EXIT_USAGE, "--real", "unknown component 'nosuch' (known: api-gateway"
    )


def test_up_checks_the_journal_path_before_it_starts(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "j.jsonl"
    exit_code, output = run("up", "--journal", str(missing))
    assert_one_line(exit_code, output, EXIT_USAGE, "--journal", "does not exist")
    assert "mesh" not in output.lower().replace("--journal", "")  # nothing started


def test_stubs_serve_checks_the_whole_port_range_first() -> None:
    exit_code, output = run("stubs", "serve", "--port", "65530")
    assert_one_line(exit_code, output, EXIT_USAGE, "--port", "65530", "choose at most")
    exit_code, output = run("stubs", "serve", "stripe", "sendgrid", "--port", "65535")
    assert_one_line(exit_code, output, EXIT_USAGE, "--port", "choose at most 65534")


def test_stubs_serve_refuses_a_component_named_twice(tmp_path: Path) -> None:
    exit_code, output = run("stubs", "serve", "stripe", "stripe")
    assert_one_line(exit_code, output, EXIT_USAGE, "stripe", "twice")
    copy = tmp_path / "copy-of-order-svc.yaml"
    copy.write_bytes(shipped_spec("order-svc").read_bytes())
    exit_code, output = run("stubs", "serve", "order-svc", "--spec", str(copy))
    assert_one_line(exit_code, output, EXIT_USAGE, "order-svc", str(copy), "twice")


def test_topology_file_is_read_as_specs_lint_reads_it(tmp_path: Path) -> None:
    """An edge to an unknown component: the same error from both commands, exit 1."""
    shipped = (spec_root() / "topology.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "topology.yaml"
    broken.write_text(shipped.replace("to: stripe,", "to: stripe-eu,", 1), encoding="utf-8")
    for spec in (spec_root() / "openapi").rglob("*.yaml"):  # the specs it names, beside it
        target = tmp_path / spec.relative_to(spec_root())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(spec.read_bytes())
    for spec in (spec_root() / "asyncapi").glob("*.yaml"):
        target = tmp_path / "asyncapi" / spec.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(spec.read_bytes())
    lint_code, lint_output = run("specs", "lint", str(broken))
    topo_code, topo_output = run("topology", "--file", str(broken))
    assert lint_code == topo_code == EXIT_PROBLEMS, topo_output
    assert "stripe-eu" in topo_output
    problem = next(line for line in lint_output.splitlines() if "stripe-eu" in line)
    assert problem in topo_output


def test_up_warns_about_a_real_service_nobody_answers_for() -> None:
    """Checked by the mesh before it serves: a warning naming the URL (the mesh still
    starts: the service may come up later)."""
    from ecom_harness.harness import unreachable_real_services

    with nobody_listening() as port:
        url = f"http://127.0.0.1:{port}"
        warnings = unreachable_real_services({"order-svc": url})
    assert warnings == [
        f"nothing answers at {url} (--real order-svc): its callers will fail until it starts"
    ]


async def test_the_first_failed_call_to_a_real_service_names_its_address() -> None:
    from ecom_harness.harness import Mesh, MeshOptions

    with nobody_listening() as port:
        url = f"http://127.0.0.1:{port}"
        async with Mesh(MeshOptions(real={"user-svc": url})) as mesh, mesh.client() as client:
            answer = await client.post(
                "/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
            )
    assert answer.status_code == 503
    (failed,) = mesh.journal.interactions("api-gateway->user-svc")
    assert failed.status is None
    assert f"nothing answers at {url} (user-svc)" in str(failed.error)
