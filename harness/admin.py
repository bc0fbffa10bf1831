"""The mesh's admin API: reset, faults, the journal and seeding, over HTTP.

The API is described by ``specs/openapi/harness/mesh-admin.yaml`` and served by the stub
engine like any component, with behaviours (keyed by operationId) that act on the running
:class:`~.mesh.Mesh`. So every request is validated by the engine before a behaviour sees
it, and every answer is checked against the document: a behaviour that drifts from the
spec answers 500 ``stub-contract-violation`` instead of passing a wrong shape on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from ecom_harness.specs import load_api, spec_root
from ecom_harness.stubs import (
    Behaviour,
    SeedError,
    StubApp,
    StubEngine,
    StubResponse,
    ValidRequest,
    json_response,
    problem_response,
)

from .faults import Fault, FaultError
from .journal import Entry, EventEntry, Interaction, entry_json
from .mesh import Mesh, MeshConfigError

__all__ = ["ADMIN_COMPONENT", "admin_app", "admin_spec"]

ADMIN_COMPONENT = "mesh-admin"


def admin_spec() -> Path:
    """The admin API's OpenAPI document (in ``openapi/harness/``: not a platform component)."""
    return spec_root() / "openapi" / "harness" / f"{ADMIN_COMPONENT}.yaml"


def admin_app(mesh: Mesh) -> StubApp:
    """The ASGI app of ``mesh``'s admin API; one engine per mesh."""
    return StubApp(StubEngine(load_api(admin_spec()), MeshAdmin(mesh).behaviours()))


def _instance(req: ValidRequest) -> str:
    """The request path as a URI reference (``>`` of an edge name percent-encoded)."""
    return quote(req.request.path)


def _no_content() -> StubResponse:
    return StubResponse(204, None, None)


def _problem(
    req: ValidRequest, status: int, slug: str, title: str, detail: str, **extensions: Any
) -> StubResponse:
    return problem_response(
        status, slug, title=title, detail=detail, instance=_instance(req), **extensions
    )


def _invalid(req: ValidRequest, title: str, message: str) -> StubResponse:
    """422, with the message also as the ``errors`` entry for the body."""
    errors = [{"pointer": "/body", "message": message}]
    return _problem(req, 422, "validation-error", title, message, errors=errors)


def _unknown(req: ValidRequest, what: str, name: str, known: list[str]) -> StubResponse:
    return _problem(
        req,
        404,
        "not-found",
        f"Unknown {what}",
        f"no {what} {name} ({what}s: {', '.join(known)})",
    )


def _matches(entry: Entry, query: dict[str, Any]) -> bool:
    """Whether a journal entry passes every filter given (``edge``, ``topic``, ``kind``,
    ``since``); ``edge`` selects interactions and ``topic`` events, so each also
    excludes the other kind."""
    if entry.seq <= query.get("since", 0):
        return False
    if "kind" in query and entry.kind != query["kind"]:
        return False
    if "edge" in query and not (isinstance(entry, Interaction) and entry.edge == query["edge"]):
        return False
    return "topic" not in query or (isinstance(entry, EventEntry) and entry.topic == query["topic"])


class MeshAdmin:
    """The admin API's behaviours, bound to one mesh."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "getHealth": self.get_health,
            "getMesh": self.get_mesh,
            "resetMesh": self.reset_mesh,
            "listFaults": self.list_faults,
            "setFault": self.set_fault,
            "clearFault": self.clear_fault,
            "clearFaults": self.clear_faults,
            "getJournal": self.get_journal,
            "clearJournal": self.clear_journal,
            "seedComponent": self.seed_component,
            "getLimits": self.get_limits,
            "setLimits": self.set_limits,
            "setProviderState": self.set_provider_state,
        }

    # --- the mesh ---

    async def get_health(self, _req: ValidRequest) -> StubResponse:
        return json_response(200, {"status": "ok", "component": ADMIN_COMPONENT})

    async def get_mesh(self, _req: ValidRequest) -> StubResponse:
        mesh = self.mesh
        components = [
            {
                "name": name,
                "url": mesh.url(name),
                "mode": "real" if name in mesh.options.real else "stub",
            }
            for name in mesh.plan.components
        ]
        edges = []
        for edge in mesh.plan.edges:
            caller, callee = edge.split("->")
            edges.append({"edge": edge, "caller": caller, "callee": callee, "url": mesh.url(edge)})
        bus = {
            "kind": "in-process" if mesh.bootstrap_servers is None else "kafka",
            "bootstrap_servers": mesh.bootstrap_servers,
            "state": mesh.broker_watch.state if mesh.broker_watch else "up",
        }
        table = {"components": components, "edges": edges, "admin": mesh.url("admin"), "bus": bus}
        return json_response(200, table)

    async def reset_mesh(self, _req: ValidRequest) -> StubResponse:
        await self.mesh.reset()
        return _no_content()

    # --- faults ---

    def _fault_item(self, edge: str, active: dict[str, Any]) -> dict[str, Any]:
        """FaultBook.active()'s flat ``{fault fields..., fired}`` as an ActiveFault."""
        fault = dict(active)
        fired = fault.pop("fired")
        return {"edge": edge, "fault": fault, "fired": fired}

    async def list_faults(self, _req: ValidRequest) -> StubResponse:
        items = [self._fault_item(e, a) for e, a in self.mesh.faults.active().items()]
        return json_response(200, {"items": items})

    def _unknown_edge(self, req: ValidRequest) -> StubResponse | None:
        """404 when the path's edge is not an HTTP edge of this mesh, else None."""
        edge = req.params["path"]["edge"]
        if edge in self.mesh.plan.edges:
            return None
        return _unknown(req, "edge", edge, list(self.mesh.plan.edges))

    async def set_fault(self, req: ValidRequest) -> StubResponse:
        unknown = self._unknown_edge(req)
        if unknown is not None:
            return unknown
        edge = req.params["path"]["edge"]
        try:
            fault = Fault.from_dict(req.body)
        except FaultError as exc:  # what the schema lets through (503.0 as a status...)
            return _invalid(req, "Invalid fault", str(exc))
        self.mesh.faults.set(edge, fault)
        return json_response(200, self._fault_item(edge, self.mesh.faults.active()[edge]))

    async def clear_fault(self, req: ValidRequest) -> StubResponse:
        unknown = self._unknown_edge(req)
        if unknown is not None:
            return unknown
        self.mesh.faults.clear(req.params["path"]["edge"])
        return _no_content()

    async def clear_faults(self, _req: ValidRequest) -> StubResponse:
        self.mesh.faults.clear()
        return _no_content()

    # --- the journal ---

    async def get_journal(self, req: ValidRequest) -> StubResponse:
        query = req.params["query"]
        entries = self.mesh.journal.entries()
        last_seq = max([query.get("since", 0), *(e.seq for e in entries)])
        # Each entry as the journal file has it (entry_json cannot fail on what an entry
        # holds), read back as plain JSON data (tuples as lists) for the validator.
        items = [orjson.loads(entry_json(e)) for e in entries if _matches(e, query)]
        return json_response(200, {"items": items, "last_seq": last_seq})

    async def clear_journal(self, _req: ValidRequest) -> StubResponse:
        self.mesh.journal.clear()
        return _no_content()

    # --- components ---

    async def seed_component(self, req: ValidRequest) -> StubResponse:
        component = req.params["path"]["component"]
        if component not in self.mesh.plan.components:
            return _unknown(req, "component", component, list(self.mesh.plan.components))
        try:
            await self.mesh.seed(component, req.body)
        except MeshConfigError as exc:  # no seed here: a state conflict, not bad data
            return _problem(req, 409, "conflict", "Component cannot be seeded", str(exc))
        # Simulators refuse data they cannot use with ValueError; data of another
        # component's shape (a list where a mapping is expected) fails on first use.
        except SeedError as exc:  # the simulator's own words, and where
            message = f"{component} cannot use the seed data: {exc}"
            errors = [{"pointer": "/body" + exc.pointer, "message": str(exc)}]
            return _problem(
                req, 422, "validation-error", "Seed data not usable", message, errors=errors
            )
        return _no_content()

    # --- the gateway's limits ---

    async def get_limits(self, req: ValidRequest) -> StubResponse:
        try:
            return json_response(200, self.mesh.gateway_limits())
        except MeshConfigError as exc:
            return _problem(req, 409, "conflict", "No gateway simulator", str(exc))

    async def set_limits(self, req: ValidRequest) -> StubResponse:
        try:
            return json_response(200, self.mesh.set_gateway_limits(**req.body))
        except MeshConfigError as exc:
            return _problem(req, 409, "conflict", "No gateway simulator", str(exc))
        except ValueError as exc:
            return _invalid(req, "Limits not usable", str(exc))

    async def set_provider_state(self, req: ValidRequest) -> StubResponse:
        """A Pact verifier's state change: see ``contracts.states``."""
        from .contracts.states import ProviderStateError, set_provider_state

        try:
            values = await set_provider_state(self.mesh, req.body)
        except (ProviderStateError, MeshConfigError, ValueError) as exc:
            return _invalid(req, "Provider state not set", str(exc))
        except httpx.HTTPError as exc:
            return _invalid(req, "Provider state not set", f"the provider did not answer: {exc}")
        return json_response(200, values)
