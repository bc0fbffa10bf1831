"""Pact provider states on a mesh: what ``POST /admin/provider-states`` does.

A state generated from a scenario says what the scenario's ``given`` did to the provider
(its seed, the faults on its own calls) and which requests it had answered before the
interaction (``setup``). Setting it: reset the mesh, seed, set the faults, replay those
requests to the provider -- a stub, or a real service at a URL, the same way -- and
answer the values the provider made while replaying (``captures``: a reservation id it
returned, a token it issued) under the names the pact's ProviderState generators use.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from ecom_harness.harness.faults import Fault, FaultError
from ecom_harness.specs import PointerError, load_api, resolve_pointer, shipped_spec

from .served import static_credentials

if TYPE_CHECKING:
    from ecom_harness.harness.mesh import Mesh

__all__ = ["ProviderStateError", "set_provider_state", "substitute"]


class ProviderStateError(ValueError):
    """The state cannot be set: the message says which part of the params and why."""


def _own_account(
    path: str, captures: dict[str, list[Any]], learned: dict[str, str], credentials: dict[str, str]
) -> str:
    """A path naming a provider-made value before any answer gave it is naming the
    account of the credentials: Twilio's ``/Accounts/{AccountSid}/Messages.json``, whose
    AccountSid must be the Basic user name. The scenario's account (its canonical
    stand-in) becomes the test credentials' own, so the replay is answered and the
    interaction's path (a ProviderState generator on that capture) names it too."""
    authorization = credentials.get("Authorization", "")
    if not authorization.startswith("Basic "):
        return path
    try:
        user = base64.b64decode(authorization[len("Basic ") :]).decode().partition(":")[0]
    except ValueError:
        return path
    for name in captures:
        if name not in learned and name in path:
            path = path.replace(name, user)
    return path


def substitute(value: Any, learned: dict[str, str]) -> Any:
    """``value`` with every canonical value the provider made replaced by this run's."""
    if isinstance(value, dict):
        return {k: substitute(v, learned) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, learned) for v in value]
    if isinstance(value, str):
        if value == "[redacted]" and "secret" in learned:
            return learned["secret"]
        for old, new in learned.items():
            if old != "secret":
                value = value.replace(old, new)
    return value


async def set_provider_state(mesh: Mesh, body: dict[str, Any]) -> dict[str, str]:
    if body.get("action", "setup") != "setup":
        return {}
    params = body.get("params") or {}
    provider = params.get("provider")
    if not isinstance(provider, str) or provider not in mesh.plan.components:
        raise ProviderStateError(f"params.provider: unknown component {provider!r}")
    await mesh.reset()
    if params.get("seed") is not None and provider in mesh.hosted:
        await mesh.seed(provider, params["seed"])
    for index, fault in enumerate(params.get("faults") or []):
        try:
            mesh.faults.set(str(fault["edge"]), Fault.from_dict(fault.get("fault") or {}))
        except (FaultError, KeyError) as exc:
            raise ProviderStateError(f"params.faults[{index}]: {exc}") from None
    return await _replay(mesh, provider, params.get("setup") or [], params.get("captures") or {})


async def _replay(
    mesh: Mesh, provider: str, setup: list[dict[str, Any]], captures: dict[str, list[Any]]
) -> dict[str, str]:
    api = load_api(shipped_spec(provider))
    credentials = static_credentials(api)
    learned: dict[str, str] = {}
    wanted: dict[int, list[tuple[str, str]]] = {}
    for name, (step, pointer) in captures.items():
        wanted.setdefault(int(step), []).append((name, str(pointer)))
    async with httpx.AsyncClient(base_url=mesh.url(provider), timeout=30) as client:
        for index, step in enumerate(setup):
            headers = {**credentials, **substitute(step.get("headers") or {}, learned)}
            body = substitute(step.get("body"), learned)
            kind = str(headers.get("content-type", "application/json")).split(";")[0]
            content: bytes | None = None
            if body is not None:
                content = (
                    urlencode({k: str(v) for k, v in body.items()}).encode()
                    if kind == "application/x-www-form-urlencoded" and isinstance(body, dict)
                    else httpx.Request("POST", "/", json=body).content
                )
            path = _own_account(substitute(step["path"], learned), captures, learned, credentials)
            query = substitute(step.get("query") or "", learned)
            answer = await client.request(
                step["method"],
                path + (f"?{query}" if query else ""),
                headers=headers,
                content=content,
            )
            for name, pointer in wanted.get(index, []):
                try:
                    found = resolve_pointer(answer.json(), pointer)
                except (PointerError, ValueError):
                    raise ProviderStateError(
                        f"params.setup[{index}]: {step['method']} {path} answered "
                        f"{answer.status_code} without {pointer}"
                    ) from None
                learned[name] = str(found)
    return learned
