"""``--format bundle`` as another team uses it: copied into a directory of its own, run
with the one command its README gives, answering over HTTP with its settings applied."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from ecom_harness.cli.main import cli

BIN = Path(sys.executable).parent  # the venv's console scripts, as after `pip install`
ORDER = {
    "user_id": "usr_4fT9aQ2pLx",
    "items": [{"sku": "SKU-1001", "quantity": 2, "unit_amount": 2599}],
    "currency": "eur",
    "payment_method": "pm_card_visa",
    "shipping_address": {
        "name": "Lena Fischer",
        "line1": "Torstraße 112",
        "city": "Berlin",
        "postal_code": "10119",
        "country": "DE",
    },
}


def readme_command(bundle: Path) -> list[str]:
    """The one command of the README's 'Run it' block (after its `pip install ... &&`)."""
    text = (bundle / "README.md").read_text()
    block = re.search(r"## Run it\s+```sh\n(.+?)\n```", text, re.S)
    assert block is not None, text
    command = block.group(1).split("&&")[-1].strip()
    words = shlex.split(command)
    assert words[0] == "ecom-harness"
    return [str(BIN / words[0]), *words[1:]]


def test_a_bundle_runs_anywhere_from_its_readme_command(tmp_path: Path) -> None:
    made = tmp_path / "made"
    result = CliRunner().invoke(
        cli, ["stubs", "generate", "order-svc", "--format", "bundle", "--out", str(made)]
    )
    assert result.exit_code == 0, result.output
    bundle = shutil.copytree(made, tmp_path / "elsewhere" / "order-stub")  # nothing refers back
    settings = (bundle / "stub.toml").read_text()
    settings = re.sub(r"(?m)^port = \d+", "port = 0", settings)  # any free port here
    settings = settings.replace(  # the team's own settings: one failure, then latency
        '# fault = { kind = "error", status = 503, times = 2 }',
        'fault = { kind = "error", status = 503, body = { "title" = "down" }, times = 1 }',
    )
    (bundle / "stub.toml").write_text(settings)
    (bundle / "seed" / "inventory-svc.json").write_text('{"SKU-1001": 1}')  # one unit left

    server = subprocess.Popen(
        readme_command(bundle),
        cwd=bundle,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = None
        for _ in range(10):
            line = server.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, server.stderr.read() if server.stderr else ""
        with httpx.Client(base_url=url, headers={"X-Service-Token": "t"}, timeout=30) as client:
            first = client.get("/health")
            assert (first.status_code, first.json()) == (503, {"title": "down"})
            assert client.get("/health").json() == {"status": "ok", "component": "order-svc"}
            # The saga runs against the bundle's own inventory, payment, shipping, Stripe.
            placed = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
            assert placed.status_code == 409, placed.text  # the seed left 1 unit, not 2
            assert placed.json()["type"].endswith("/out-of-stock")
            one = {**ORDER, "items": [{"sku": "SKU-1001", "quantity": 1, "unit_amount": 2599}]}
            placed = client.post("/orders", json=one, headers={"Idempotency-Key": "k-2"})
            assert placed.status_code == 201, placed.text
            assert placed.json()["status"] == "CONFIRMED"
            invalid = client.post("/orders", json={"items": []}, headers={"Idempotency-Key": "k"})
            assert invalid.status_code in (400, 422)
            assert invalid.headers["content-type"].startswith("application/problem+json")
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "stopped" in stderr


def test_a_bundle_with_broken_settings_says_where(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    CliRunner().invoke(cli, ["stubs", "generate", "payment-svc", "--out", str(bundle)])
    toml = bundle / "stub.toml"
    toml.write_text(toml.read_text() + '\n[components.payment-svc.fault]\nkind = "explode"\n')
    result = CliRunner().invoke(cli, ["stubs", "serve", "--bundle", str(bundle)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"ecom-harness: {toml}#/components/payment-svc/fault: "
        "kind must be one of delay, timeout, error, reset, not 'explode'"
    )


def test_serving_a_directory_that_is_not_a_bundle_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["stubs", "serve", "--bundle", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"ecom-harness: {tmp_path}: not a stub bundle (no bundle ecom-harness-export.json)"
    )


def test_stub_toml_settings_reach_the_served_stubs(tmp_path: Path) -> None:
    """Latency (global, then per component), a fault, seeds and simulator settings, as
    the server gets them (latency itself is not timed here: no timed tests)."""
    from ecom_harness.harness import Fault, load_bundle

    bundle = tmp_path / "b"
    CliRunner().invoke(
        cli, ["stubs", "generate", "inventory-svc", "catalog-svc", "--out", str(bundle)]
    )
    toml = bundle / "stub.toml"
    text = toml.read_text().replace("latency_ms = 0", "latency_ms = 20", 1)
    text = text.replace(
        "[components.catalog-svc]\n# latency_ms = 50",
        '[components.catalog-svc]\nlatency_ms = 5\nfault = { kind = "delay", delay_ms = 30 }',
    )
    text += '\n[settings.inventory-svc]\nstock = { "SKU-1001" = 7 }\n'
    toml.write_text(text)
    options = load_bundle(bundle, port=0)
    assert options.served == ("inventory-svc", "catalog-svc")
    assert dict(options.latency_ms) == {"inventory-svc": 20.0, "catalog-svc": 5.0}
    assert dict(options.faults) == {"catalog-svc": Fault("delay", delay_ms=30.0)}
    assert set(options.seeds) == {"inventory-svc", "catalog-svc"}
    assert options.settings == {"inventory-svc": {"stock": {"SKU-1001": 7}}}
    assert options.asyncapi == bundle / "specs" / "asyncapi" / "commerce-events.yaml"
    assert all(path.is_relative_to(bundle) for path in options.specs.values())
