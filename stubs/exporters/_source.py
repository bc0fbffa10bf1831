"""What an export is made from: the components asked for, the spec files behind them
(their own and those they depend on), and the version and digest of each.

A component's dependencies are the components it calls over HTTP in the topology, and
the AsyncAPI document when it publishes or consumes Kafka topics: a payment-svc stub
served alone still needs Stripe behind it to answer with its simulator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ecom_harness.specs import (
    Document,
    Topology,
    TopologyError,
    load_topology,
    read_document,
    spec_root,
)

__all__ = ["ExportError", "Sources", "SpecFile", "resolve_sources"]

TOPOLOGY_FILE = "topology.yaml"


class ExportError(ValueError):
    """Input an export cannot be made from; the message is one line saying why."""


@dataclass(frozen=True, slots=True)
class SpecFile:
    """One spec file as exported: its place under ``specs/``, title, version and digest."""

    relative: str  # "openapi/order-svc.yaml"
    path: Path
    title: str
    version: str
    sha256: str

    @classmethod
    def read(cls, root: Path, relative: str) -> SpecFile:
        path = root / relative
        raw = path.read_bytes()
        doc = read_document(path)
        info = doc.data.get("info") if isinstance(doc, Document) else None
        info = info if isinstance(info, dict) else {}
        return cls(
            relative=relative,
            path=path,
            title=str(info.get("x-component") or info.get("title") or path.stem),
            version=str(info.get("version", "unversioned")),
            sha256=hashlib.sha256(raw).hexdigest(),
        )

    def describe(self) -> str:
        return f"{self.title} {self.version} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True, slots=True)
class Sources:
    """The components asked for and every spec file an export of them needs."""

    components: tuple[str, ...]
    openapi: dict[str, SpecFile]  # component -> its OpenAPI file (asked-for and dependencies)
    asyncapi: SpecFile | None  # the events document, when one of them uses Kafka

    @property
    def files(self) -> list[SpecFile]:
        found = list(self.openapi.values())
        return [*found, self.asyncapi] if self.asyncapi is not None else found


def _topology(root: Path) -> Topology:
    try:
        return load_topology(root / TOPOLOGY_FILE)
    except TopologyError as exc:
        raise ExportError(f"{root / TOPOLOGY_FILE}: not a usable topology ({exc})") from None


def _uses_kafka(topology: Topology, name: str) -> bool:
    """Whether ``name`` publishes or consumes (an edge to or from the broker)."""
    return any(e.protocol == "kafka" and name in (e.source, e.target) for e in topology.edges)


def resolve_sources(
    components: list[str],
    *,
    need_openapi: bool,
    dependencies: bool = True,
    root: Path | None = None,
) -> Sources:
    """Check the names and collect the spec files; ``ExportError`` names the first
    unknown component, or one without the kind of spec the format needs."""
    root = root or spec_root()
    components = list(dict.fromkeys(components))  # each once, in the order given
    topology = _topology(root)
    known = topology.components
    if not components:
        raise ExportError("name at least one COMPONENT")
    for name in components:
        entry = known.get(name)
        if entry is None:
            raise ExportError(f"unknown component '{name}' (known: {', '.join(known)})")
        spec = entry.spec or ""
        if not spec:
            raise ExportError(f"{name} has no spec (a {entry.kind})")
        if need_openapi and not spec.startswith("openapi/"):
            raise ExportError(
                f"{name} has no OpenAPI spec (its spec is {spec}); "
                "for its messages use --format events-python"
            )
    openapi: dict[str, SpecFile] = {}
    pending = [n for n in components if (known[n].spec or "").startswith("openapi/")]
    while pending:
        name = pending.pop(0)
        if name in openapi:
            continue
        openapi[name] = SpecFile.read(root, str(known[name].spec))
        if dependencies:
            callees = [e.target for e in topology.edges_from(name) if e.is_http]
            pending.extend(c for c in callees if known[c].spec)
    kafka = next((n for n, e in known.items() if e.kind == "broker"), None)
    wants_events = any(n == kafka or _uses_kafka(topology, n) for n in components) or (
        dependencies and any(_uses_kafka(topology, n) for n in openapi)
    )
    broker_spec = known[kafka].spec if kafka is not None else None
    asyncapi = SpecFile.read(root, broker_spec) if wants_events and broker_spec else None
    return Sources(tuple(components), openapi, asyncapi)
