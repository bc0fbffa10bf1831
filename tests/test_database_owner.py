"""One process per service database on PostgreSQL: a second mesh or stub server on the
same databases is refused with a message naming the first, instead of each overwriting
what the other keeps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POSTGRES_URL
from ecom_harness.stubs.state import Backends, database_name, open_database
from ecom_harness.stubs.state._backends import DatabaseUnavailable

CONSOLE_SCRIPT = Path(sys.executable).parent / "ecom-harness"


@pytest.mark.parametrize("backends", ["real"], indirect=True)
async def test_a_database_in_use_is_refused_until_its_user_lets_it_go(
    backends: Backends,
) -> None:
    first = await open_database("order-svc", backends)
    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            await open_database("order-svc", backends)
        message = str(refused.value)
        assert database_name(backends.database_prefix, "order-svc") in message
        assert f"is in use by ecom-harness pid {os.getpid()} since " in message
        other = await open_database("payment-svc", backends)  # each service's its own
        await other.dispose()
    finally:
        await first.dispose()
    again = await open_database("order-svc", backends)
    await again.dispose()


async def test_a_second_server_on_the_same_databases_says_whose_they_are() -> None:
    """``stubs serve`` (as ``up`` and ``run``) names its databases ``ecom_<service>``:
    one started while another process holds them exits 1 with one line naming it."""
    held = await open_database("order-svc", Backends(database_url=POSTGRES_URL))
    try:
        command = [str(CONSOLE_SCRIPT), "stubs", "serve", "order-svc"]
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "--postgres", POSTGRES_URL, "--port", "0"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        await held.dispose()
    assert done.returncode == 1, done.stderr
    assert "cannot serve the stubs: PostgreSQL database ecom_order_svc" in done.stderr
    assert f"is in use by ecom-harness pid {os.getpid()} since " in done.stderr
    assert "Traceback" not in done.stderr
