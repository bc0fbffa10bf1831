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
from typing import Any

from ecom_harness.stubs._documents import Document, read_document
from ecom_harness.stubs._locate import spec_root
from ecom_harness.stubs._yaml import load_yaml

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


def _topology(root: Path) -> dict[str, Any]:
    data = load_yaml((root / TOPOLOGY_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
        raise ExportError(f"{root / TOPOLOGY_FILE}: not a topology document")
    return data


def _http_callees(topology: dict[str, Any], name: str) -> list[str]:
    return [
        str(edge["to"])
        for edge in topology.get("edges") or []
        if isinstance(edge, dict)
        and edge.get("from") == name
        and edge.get("protocol") in ("http", "https")
    ]


def _uses_kafka(topology: dict[str, Any], name: str) -> bool:
    return any(
        isinstance(edge, dict)
        and edge.get("protocol") == "kafka"
        and name in (edge.get("from"), edge.get("to"))
        for edge in topology.get("edges") or []
    )


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
    topology = _topology(root)
    known: dict[str, Any] = topology["components"]
    if not components:
        raise ExportError("name at least one COMPONENT")
    for name in components:
        entry = known.get(name)
        if not isinstance(entry, dict):
            raise ExportError(f"unknown component '{name}' (known: {', '.join(known)})")
        spec = str(entry.get("spec") or "")
        if not spec:
            raise ExportError(f"{name} has no spec (a {entry.get('kind', 'component')})")
        if need_openapi and not spec.startswith("openapi/"):
            raise ExportError(
                f"{name} has no OpenAPI spec (its spec is {spec}); "
                "for its messages use --format events-python"
            )
    openapi: dict[str, SpecFile] = {}
    pending = [n for n in components if str(known[n].get("spec", "")).startswith("openapi/")]
    while pending:
        name = pending.pop(0)
        if name in openapi:
            continue
        openapi[name] = SpecFile.read(root, str(known[name]["spec"]))
        if dependencies:
            callees = _http_callees(topology, name)
            pending.extend(c for c in callees if known.get(c, {}).get("spec"))
    kafka = next(
        (n for n, e in known.items() if isinstance(e, dict) and e.get("kind") == "broker"), None
    )
    wants_events = any(n == kafka for n in components) or (
        dependencies and any(_uses_kafka(topology, n) for n in [*components, *openapi])
    )
    asyncapi = (
        SpecFile.read(root, str(known[kafka]["spec"]))
        if kafka is not None and wants_events and known[kafka].get("spec")
        else None
    )
    return Sources(tuple(components), openapi, asyncapi)
