"""The shipped stubs served on loopback for the contract commands, and their credentials.

``contracts fuzz`` and ``contracts verify`` without ``--provider-url`` test the simulators:
every component is hosted in-process (so a served provider still reaches its peers) on
free loopback ports, by a background thread stopped through its own event.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from ecom_harness.specs import Api
from ecom_harness.stubs import ServePlan, serve_stubs

__all__ = ["credentials_for", "served_stubs", "static_credentials"]

# Test credentials the external simulators accept (their specs' own test conventions).
TWILIO_TEST_SID = "AC" + "0" * 32
_BEARER = {"stripe": "sk_test_ecom_harness", "sendgrid": "SG.ecom-harness"}


@contextmanager
def served_stubs(components: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """``{component: url}`` of the served stubs (every shipped one by default)."""
    ready: dict[str, str] = {}
    started = threading.Event()
    failed: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def on_ready(urls: dict[str, str]) -> None:
        ready.update(urls)
        started.set()

    def run() -> None:
        try:
            loop.run_until_complete(serve_stubs(ServePlan(components=components), on_ready, stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="contract-stubs", daemon=True)
    thread.start()
    started.wait(60)
    if failed:
        raise failed[0]
    if not ready:
        raise RuntimeError("the stubs did not start within 60 s")
    try:
        yield ready
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def credentials_for(api: Api, url: str | None) -> dict[str, str]:
    """Headers that satisfy the security scheme of a shipped stub.

    Internal services take any service token; the gateway takes a real JWT, got by
    registering and logging in through it at ``url`` (user-svc issues and introspects it).
    """
    headers: dict[str, str] = {}
    for name, scheme in sorted(api.security_schemes.items()):
        kind = scheme.get("type")
        if kind == "apiKey" and scheme.get("in") == "header":
            headers[str(scheme["name"])] = "ecom-harness-contracts"
        elif kind == "http" and scheme.get("scheme") == "basic":
            basic = base64.b64encode(f"{TWILIO_TEST_SID}:token".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        elif kind == "http" and scheme.get("bearerFormat") == "JWT":
            if url is not None:  # without an address: no token to be had
                headers["Authorization"] = f"Bearer {_gateway_token(url)}"
        elif kind == "http":
            headers["Authorization"] = f"Bearer {_BEARER.get(api.component, name)}"
    return headers


def static_credentials(api: Api) -> dict[str, str]:
    """The credentials of a shipped stub that need no call to get (all but a JWT)."""
    return credentials_for(api, None)


def _gateway_token(gateway: str) -> str:
    credentials = {"email": "contracts@example.com", "password": "correct-horse-battery"}
    with httpx.Client(base_url=gateway, timeout=10) as client:
        client.post("/v1/auth/register", json=credentials | {"name": "Contracts"})
        answer = client.post("/v1/auth/login", json=credentials)
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token
