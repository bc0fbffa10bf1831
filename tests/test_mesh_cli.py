"""``ecom-harness env`` and ``ecom-harness up``: what a real service is told, and the
mesh in the foreground (a real process, stopped by SIGINT through its handle)."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from conftest import free_port_base, is_free, plan_for, plan_ports
from ecom_harness.cli.main import cli
from ecom_harness.harness.addresses import PortPlan
from ecom_harness.stubs import Deadlines

CONSOLE_SCRIPT = Path(sys.executable).parent / "ecom-harness"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# --- env ---------------------------------------------------------------------------------


def order_svc_env(plan: PortPlan) -> dict[str, str]:
    """What a real order-svc must be told with ``--kafka local`` and no --postgres."""
    proxy = "http://127.0.0.1:{}".format
    wait = Deadlines().edge
    return {
        "PORT": str(plan.components["order-svc"]),
        "CALLER_API_GATEWAY_WAITS": f"{wait('api-gateway', 'order-svc'):g}",
        "INVENTORY_SVC_URL": proxy(plan.edges["order-svc->inventory-svc"]),
        "INVENTORY_SVC_TIMEOUT": f"{wait('order-svc', 'inventory-svc'):g}",
        "PAYMENT_SVC_URL": proxy(plan.edges["order-svc->payment-svc"]),
        "PAYMENT_SVC_TIMEOUT": f"{wait('order-svc', 'payment-svc'):g}",
        "SHIPPING_SVC_URL": proxy(plan.edges["order-svc->shipping-svc"]),
        "SHIPPING_SVC_TIMEOUT": f"{wait('order-svc', 'shipping-svc'):g}",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{plan.kafka}",
        "DATABASE_URL": "sqlite:///ecom_order_svc.db",
    }


def test_env_json_gives_ports_proxies_broker_and_database() -> None:
    base = 24000
    result = invoke(
        "env", "order-svc", "--port-base", str(base), "--kafka", "local", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == order_svc_env(plan_for(base))
    assert result.stderr == ""


def test_env_dotenv_for_the_gateway_with_redis() -> None:
    base, redis = 25000, "redis://127.0.0.1:6379/3"
    result = invoke(
        "env", "api-gateway", "--port-base", str(base), "--redis", redis, "--format", "dotenv"
    )
    assert result.exit_code == 0, result.output
    plan = plan_for(base)
    lines = result.stdout.splitlines()
    wait = Deadlines().edge
    assert lines == [
        f"PORT={plan.components['api-gateway']}",
        f"CALLER_CLIENT_WAITS={wait('client', 'api-gateway'):g}",
        *(
            line
            for edge in plan.edges
            for caller, callee in [edge.split("->")]
            if caller == "api-gateway"
            for line in (
                f"{callee.upper().replace('-', '_')}_URL=http://127.0.0.1:{plan.edges[edge]}",
                f"{callee.upper().replace('-', '_')}_TIMEOUT={wait(caller, callee):g}",
            )
        ),
        f"REDIS_URL={redis}",
        # its keys' namespace, which the mesh empties when each scenario starts
        f"REDIS_KEY_PREFIX=ecom-harness:{base}:api-gateway:",
    ]
    assert "DATABASE_URL" not in result.stdout  # the gateway owns no database


PRINT_ENVIRON = "import json, os; print(json.dumps(dict(os.environ)))"


def test_env_sh_survives_the_shell_with_awkward_values() -> None:
    """``--format sh`` is evaluated by a real shell; quotes, ``$``, ``&`` and spaces in
    a DSN come out exactly as given."""
    base = 26000
    dsn = "postgresql://shop:it's $HOME & more@127.0.0.1:5432/postgres?sslmode=disable"
    result = invoke("env", "order-svc", "--port-base", str(base), "--postgres", dsn)
    assert result.exit_code == 0, result.output
    assert all(line.startswith("export ") for line in result.stdout.splitlines())
    script = f'{result.stdout}\nexec "$0" -c {shlex.quote(PRINT_ENVIRON)}'
    shell = subprocess.run(
        ["sh", "-c", script, sys.executable], capture_output=True, text=True, check=True, env={}
    )
    seen = json.loads(shell.stdout)
    expected = order_svc_env(plan_for(base))
    del expected["KAFKA_BOOTSTRAP_SERVERS"]  # no --kafka: a warning instead
    expected["DATABASE_URL"] = dsn.replace("/postgres?", "/ecom_order_svc?")
    assert {k: seen.get(k) for k in expected} == expected
    assert "KAFKA_BOOTSTRAP_SERVERS" not in seen


def test_env_warns_when_the_embedded_bus_or_cache_cannot_be_shared() -> None:
    kafka = invoke("env", "order-svc", "--port-base", "24000", "--format", "json")
    redis = invoke("env", "api-gateway", "--port-base", "24000", "--format", "json")
    assert kafka.exit_code == redis.exit_code == 0
    assert "KAFKA_BOOTSTRAP_SERVERS" not in json.loads(kafka.stdout)
    assert "order-svc" in kafka.stderr and "--kafka local" in kafka.stderr
    assert "REDIS_URL" not in json.loads(redis.stdout)
    assert "--redis" in redis.stderr


def test_env_with_an_existing_cluster_and_a_real_port() -> None:
    result = invoke(
        "env",
        "order-svc",
        "--port-base",
        "24000",
        "--kafka",
        "kafka-1:9092,kafka-2:9092",
        "--real",
        "order-svc=http://127.0.0.1:9000",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    variables = json.loads(result.stdout)
    assert variables["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092"
    assert variables["PORT"] == "9000"  # where the mesh will forward to


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env", "order-svc"], "--port-base is required"),
        (["env", "nope", "--port-base", "24000"], "unknown component 'nope' (known: api-gateway"),
        (
            ["env", "order-svc", "--port-base", "24000", "--real", "order-svc:9000"],
            "'order-svc:9000' is not NAME=URL",
        ),
        (
            ["up", "--real", "order-svc=127.0.0.1:9000"],
            "'order-svc=127.0.0.1:9000' is not NAME=URL",
        ),
        (["env", "order-svc", "--port-base", "24000", "--kafka", "kafka"], "'kafka' is neither"),
        (["env", "order-svc", "--port-base", "24000", "--redis", "http://x"], "not a redis"),
        (["up", "--port-base", "80"], "--port-base 80 needs ports 80.."),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())  # Click wraps long lines


# --- up ------------------------------------------------------------------------------------


def test_up_refuses_a_real_kafka_user_with_the_in_process_bus() -> None:
    result = invoke("up", "--real", "order-svc=http://127.0.0.1:9000")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert "order-svc" in result.stderr and "--kafka local" in result.stderr


@pytest.fixture
def occupied_admin_port() -> Iterator[int]:
    """A free port base whose admin port someone else listens on."""
    base = free_port_base()
    with closing(socket.socket()) as squatter:
        squatter.bind(("127.0.0.1", plan_for(base).admin))
        squatter.listen()
        yield base


def test_up_with_a_port_in_use_fails_in_one_line_and_frees_the_others(
    occupied_admin_port: int,
) -> None:
    base = occupied_admin_port
    result = invoke("up", "--port-base", str(base))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot run the mesh" in result.stderr and "in use" in result.stderr
    plan = plan_for(base)
    assert all(is_free(port) for port in plan_ports(plan) if port != plan.admin)


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float = 30) -> str:
    """Lines of ``stream`` up to the first one containing ``needle``."""
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while not seen or needle not in seen[-1]:
            line = await stream.readline()
            if not line:
                raise AssertionError("output ended early:\n" + "".join(seen))
            seen.append(line.decode())
    return "".join(seen)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
async def test_up_serves_until_signalled_then_frees_its_ports_and_saves_the_journal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    base, journal = free_port_base(), tmp_path / "journal.jsonl"
    plan = plan_for(base)
    process = await asyncio.create_subprocess_exec(
        str(CONSOLE_SCRIPT),
        "up",
        "--port-base",
        str(base),
        "--journal",
        str(journal),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        table = await read_until(process.stdout, "Ctrl-C stops everything")
        rows = [line.split("│")[1:4] for line in table.splitlines() if line.startswith("│")]
        names = [row[0].strip() for row in rows]
        assert names[0] == "api-gateway"
        gateway_proxy = f"http://127.0.0.1:{plan.edges['client->api-gateway']}"
        assert ["client->api-gateway", "proxy", gateway_proxy] in [
            [cell.strip() for cell in row] for row in rows
        ]
        async with httpx.AsyncClient(base_url=gateway_proxy) as client:
            registered = await client.post(
                "/v1/auth/register",
                json={"email": "up@example.com", "password": "correct-horse-9", "name": "Up"},
            )
        assert registered.status_code == 201, registered.text
        process.send_signal(stop_signal)
        async with asyncio.timeout(30):
            code = await process.wait()
        errors = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, errors
    assert "Traceback" not in errors
    assert all(is_free(port) for port in plan_ports(plan))
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    chain = [(e["caller"], e["callee"], e["operation_id"], e["status"]) for e in entries]
    assert chain == [
        ("api-gateway", "user-svc", "createUser", 201),
        ("client", "api-gateway", "registerUser", 201),
    ]
    assert entries[1]["request_body"]["password"] == "[redacted]"
