"""A user's own spec with examples that break their own schema (as Twilio's published
documents have them) is served anyway, Prism-style: the example as written, with an
``sl-violations`` header naming each violation, and one warning line at start-up;
``--strict`` refuses instead. A simulator's answer that breaks the spec stays a 500."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from ecom_harness.cli.main import cli
from ecom_harness.stubs import ServePlan, serve_stubs

WILD = Path(__file__).parent / "fixtures" / "wild"
API = WILD / "twilio_api_v2010_small.yaml"
MESSAGING = WILD / "twilio_messaging_v1_small.yaml"
AUTH = {"Authorization": "Basic QUM6dG9rZW4="}  # any basic credentials


async def serve(
    *specs: Path,
) -> tuple[dict[str, str], list[str], asyncio.Event, asyncio.Task[None]]:
    ready: dict[str, str] = {}
    warnings: list[str] = []
    started, stop = asyncio.Event(), asyncio.Event()

    def on_ready(urls: dict[str, str]) -> None:
        ready.update(urls)
        started.set()

    plan = ServePlan(spec_files=specs)
    task = asyncio.create_task(serve_stubs(plan, on_ready, stop, on_warning=warnings.append))
    async with asyncio.timeout(30):
        await started.wait()
    return ready, warnings, stop, task


async def test_an_example_breaking_its_schema_is_served_with_sl_violations() -> None:
    urls, warnings, stop, task = await serve(API, MESSAGING)
    try:
        api_url = urls["Twilio - Api (shaped fixture)"]
        other = urls["Twilio - Messaging (shaped fixture)"]
        async with httpx.AsyncClient() as client:
            listed = await client.get(
                f"{api_url}/2010-04-01/Accounts/AC{'a' * 32}/Messages.json", headers=AUTH
            )
            verifications = await client.get(f"{other}/v1/Tollfree/Verifications", headers=AUTH)
    finally:
        stop.set()
        await task
    assert listed.status_code == 200, listed.text
    assert listed.json()["messages"][0]["uri"].startswith("/2010-04-01/")  # as written
    found = json.loads(listed.headers["sl-violations"])
    assert {v["severity"] for v in found} == {"Error"}
    assert [v["location"] for v in found] == [
        ["response", "body", "messages", "0", "uri"],
        ["response", "body", "uri"],
    ]
    assert all('is not a "uri"' in v["message"] for v in found)
    assert verifications.status_code == 200
    assert "opt_in_type" in verifications.headers["sl-violations"]
    assert len(warnings) == 2, warnings  # one line per document
    assert all("--strict" in w and "sl-violations" in w for w in warnings)
    assert any(API.name in w and "1 example(s)" in w and "2 violation(s)" in w for w in warnings)


def test_strict_refuses_a_spec_whose_examples_break_it() -> None:
    result = CliRunner().invoke(cli, ["stubs", "serve", "--strict", "--spec", str(API)])
    assert result.exit_code == 1, result.output
    assert API.name in result.stderr and "example" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
