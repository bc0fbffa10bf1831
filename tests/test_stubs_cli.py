"""``ecom-harness stubs serve``: serves what it is asked for, stops cleanly on Ctrl-C, and
answers bad input and unreachable backends with one line and a documented exit code."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from conftest import is_free
from ecom_harness.cli.main import cli

CONSOLE_SCRIPT = Path(sys.executable).parent / "ecom-harness"


def _free_port() -> int:
    return next(port for port in range(23000, 24000, 7) if is_free(port) and is_free(port + 1))


def test_serves_until_ctrl_c_then_stops_and_frees_its_ports() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "stubs", "serve", "catalog-svc", "stripe", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        table = "".join(server.stdout.readline() for _ in range(6))  # title, rules, rows
        assert f"http://127.0.0.1:{port}" in table and f"http://127.0.0.1:{port + 1}" in table
        product = httpx.get(
            f"http://127.0.0.1:{port}/products/SKU-1001", headers={"X-Service-Token": "t"}
        )
        assert product.status_code == 200 and product.json()["sku"] == "SKU-1001"
        unauthorized = httpx.post(f"http://127.0.0.1:{port + 1}/v1/refunds")
        assert unauthorized.status_code == 401  # Stripe's own 401, from its simulator
        assert "error" in unauthorized.json()
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, errors
    assert "stopped" in errors and "Traceback" not in errors
    assert is_free(port) and is_free(port + 1)


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["nope"], 2, "unknown component 'nope' (known: api-gateway"),
        (
            ["order-svc", "--postgres", "postgresql://127.0.0.1:1/x"],
            1,
            "cannot serve the stubs: PostgreSQL at postgresql://127.0.0.1:1/x: [Errno 111]",
        ),
        (
            ["order-svc", "--redis", "redis://127.0.0.1:1/0"],
            1,
            "cannot serve the stubs: Redis at redis://127.0.0.1:1/0: Error 111 connecting",
        ),
        (
            ["order-svc", "--redis", "redis://:hunter2@127.0.0.1:1/0"],
            1,
            "cannot serve the stubs: Redis at redis://:***@127.0.0.1:1/0: Error 111",
        ),
    ],
    ids=["unknown-component", "unreachable-postgres", "unreachable-redis", "redis-password"],
)
def test_bad_input_gets_one_line_and_an_exit_code(
    args: list[str], exit_code: int, message: str
) -> None:
    result = CliRunner().invoke(cli, ["stubs", "serve", *args])
    assert result.exit_code == exit_code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert "hunter2" not in result.output  # a password is never shown


def test_a_spec_that_is_not_openapi_is_refused(tmp_path: Path) -> None:
    not_openapi = tmp_path / "events.yaml"
    not_openapi.write_text("asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\n")
    result = CliRunner().invoke(cli, ["stubs", "serve", "--spec", str(not_openapi)])
    assert result.exit_code == 1, result.output
    assert "not an OpenAPI document (asyncapi)" in result.output
