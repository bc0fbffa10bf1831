"""``contracts verify``: each provider replayed against every pact that names it, with
pact-python's ``Verifier``.

The provider runs inside a mesh: its stub by default, or the real service at
``--provider-url`` (its own calls still reach the mesh's stubs). Provider states are set
through the mesh's admin API (``POST /admin/provider-states``) unless ``--state-url``
names the provider team's own. A message pact is verified by having the provider produce
the message: the state's set-up replays the requests that made it publish, and the
message handler hands the verifier the event the mesh saw it publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from ecom_harness.harness.mesh import Mesh, MeshOptions

from .pacts import PactFile
from .quiet import quiet_stdout
from .results import CaseResult

__all__ = ["VerifyError", "VerifyOptions", "running_mesh", "verify_providers"]

MESSAGE_WAIT_S = 5.0


class VerifyError(RuntimeError):
    """Verification could not run (the mesh or the provider could not be reached)."""


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    providers: tuple[str, ...] = ()
    provider_url: str | None = None
    state_url: str | None = None
    mesh: MeshOptions = field(default_factory=MeshOptions)


@contextmanager
def running_mesh(options: MeshOptions) -> Iterator[tuple[Mesh, asyncio.AbstractEventLoop]]:
    """A mesh served by a background thread's event loop; stopped by its own handle."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="contract-mesh", daemon=True)
    thread.start()
    mesh = Mesh(options)
    try:
        asyncio.run_coroutine_threadsafe(mesh.start(), loop).result(120)
        yield mesh, loop
    finally:
        asyncio.run_coroutine_threadsafe(mesh.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _message_producer(mesh: Mesh, provider: str, wanted: dict[str, tuple[str, str]]) -> Any:
    """The verifier asks for a message by description; answer the event of that type the
    provider published while its state was set up."""

    def produce(name: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        topic, message_type = wanted[name]
        deadline = time.monotonic() + MESSAGE_WAIT_S
        while True:
            found = [
                e
                for e in mesh.journal.events(topic)
                if e.publisher == provider and e.message_type == message_type
            ]
            if found:
                return {
                    "contents": orjson.dumps(found[-1].value),
                    "content_type": "application/json",
                    "metadata": {"topic": topic},
                }
            if time.monotonic() > deadline:
                raise LookupError(f"{provider} published no {message_type} on {topic}")
            time.sleep(0.05)

    return produce


def _results(provider: str, pacts: list[PactFile], verifier: Any) -> list[CaseResult]:
    """One result per interaction, from the verifier's JSON (failures with mismatches)."""
    report = verifier.results
    errors: dict[str, list[str]] = {}
    for error in report.get("errors") or []:
        name = str(error.get("interaction", ""))
        mismatch = error.get("mismatch") or {}
        lines = []
        for item in mismatch.get("mismatches") or []:
            where = item.get("path") or item.get("key") or item.get("type", "")
            lines.append(f"{where}: {item.get('mismatch') or item.get('description') or item}")
        if not lines:
            lines.append(str(mismatch.get("message") or mismatch or error))
        errors.setdefault(name, []).extend(lines)
    results = []
    for pact in pacts:
        for interaction in pact.interactions:
            failed = next((v for k, v in errors.items() if interaction.description in k), None)
            results.append(
                CaseResult(
                    group=f"{pact.path.name}",
                    name=interaction.description,
                    passed=failed is None,
                    message="" if failed is None else failed[0],
                    details=tuple(failed or ()),
                )
            )
    return results


def _verify_one(
    provider: str, pacts: list[PactFile], url: str, state_url: str, mesh: Mesh
) -> list[CaseResult]:
    from pact import Verifier

    verifier = Verifier(provider, host=urlsplit(url).hostname)
    verifier.add_transport(url=url)
    for pact in pacts:
        verifier.add_source(pact.path)
    verifier.state_handler(state_url, teardown=False, body=True)
    wanted = {
        i.description: (
            str(i.metadata.get("topic", "")),
            str((i.raw.get("contents") or {}).get("content", {}).get("type", "")),
        )
        for p in pacts
        for i in p.interactions
        if i.kind == "message"
    }
    if wanted:
        verifier.message_handler(_message_producer(mesh, provider, wanted))
    with quiet_stdout(), contextlib.suppress(RuntimeError):  # failures: in the results
        verifier.verify()
    return _results(provider, pacts, verifier)


def _state_settings(
    pacts: list[PactFile], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The simulators' settings the pacts' states were recorded with (timeouts, cool-downs),
    so the stubs answer as they did; explicit mesh settings win."""
    merged: dict[str, dict[str, Any]] = {}
    for pact in pacts:
        for interaction in pact.interactions:
            for state in interaction.raw.get("providerStates") or []:
                params = state.get("params") or {}
                settings = params.get("settings")
                if isinstance(settings, dict) and isinstance(params.get("provider"), str):
                    merged.setdefault(params["provider"], {}).update(settings)
    for component, values in given.items():
        merged.setdefault(component, {}).update(values)
    return merged


def verify_providers(pacts: list[PactFile], options: VerifyOptions) -> list[CaseResult]:
    by_provider: dict[str, list[PactFile]] = {}
    for pact in pacts:
        by_provider.setdefault(pact.provider, []).append(pact)
    providers = options.providers or tuple(sorted(by_provider))
    mesh_options = replace(options.mesh, settings=_state_settings(pacts, options.mesh.settings))
    if options.provider_url is not None:
        mesh_options = replace(
            mesh_options, real={**mesh_options.real, providers[0]: options.provider_url}
        )
    results: list[CaseResult] = []
    with running_mesh(mesh_options) as (mesh, _loop):
        state_url = options.state_url or f"{mesh.url('admin')}/admin/provider-states"
        for provider in providers:
            url = options.provider_url or mesh.url(provider)
            results.extend(
                _verify_one(provider, by_provider.get(provider, []), url, state_url, mesh)
            )
    return results
