"""The platform topology: components and the directed edges between them.

An edge points from the component that opens the connection to the one it reaches. The
file's structure is checked against a JSON Schema (so each mistake has a pointer); the
architecture rules live in :mod:`ecom_harness.harness.topology_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._diagnostics import Diagnostic, pointer_from_path
from ._documents import Document, DocumentKind, read_document
from ._format_schema import FormatSchema
from ._locate import spec_root

__all__ = [
    "COMPONENT_KINDS",
    "PROTOCOLS",
    "Component",
    "Edge",
    "Topology",
    "TopologyError",
    "load_topology",
    "parse_topology",
]

COMPONENT_KINDS = ("client", "gateway", "service", "broker", "cache", "database", "external")
PROTOCOLS = ("http", "https", "kafka", "redis", "postgresql")
_NAME = "^[a-z][a-z0-9-]*$"
_UNIQUE_NAMES = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}

TOPOLOGY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "components", "edges"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "components": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "required": ["kind"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": list(COMPONENT_KINDS)},
                    "spec": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "inbound": {"enum": ["kafka-only"]},
                },
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to", "protocol"],
                "additionalProperties": False,
                "properties": {
                    "from": {"type": "string", "pattern": _NAME},
                    "to": {"type": "string", "pattern": _NAME},
                    "protocol": {"enum": list(PROTOCOLS)},
                    "external": {"type": "boolean"},
                    "operations": _UNIQUE_NAMES,
                    "channels": _UNIQUE_NAMES,
                },
            },
        },
    },
}
_FORMAT = FormatSchema(TOPOLOGY_SCHEMA)


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    kind: str
    spec: str | None = None
    description: str = ""
    inbound: str | None = None

    @property
    def pointer(self) -> str:
        return str(pointer_from_path(["components", self.name]))


@dataclass(frozen=True, slots=True)
class Edge:
    index: int
    source: str
    target: str
    protocol: str
    external: bool = False
    operations: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    @property
    def pointer(self) -> str:
        return f"/edges/{self.index}"

    @property
    def is_http(self) -> bool:
        return self.protocol in ("http", "https")


@dataclass(frozen=True, slots=True)
class Topology:
    """A parsed topology; ``root`` is the directory that spec paths are relative to."""

    root: Path
    components: dict[str, Component]
    edges: tuple[Edge, ...]

    def spec_path(self, component: Component) -> Path | None:
        return self.root / component.spec if component.spec else None

    def edges_from(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.source == name]

    def edges_to(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.target == name]

    def kafka_channels(self, name: str) -> list[str]:
        """The topics ``name`` publishes or consumes, sorted."""
        return sorted(
            {c for e in self.edges_from(name) if e.protocol == "kafka" for c in e.channels}
        )


def parse_topology(doc: Document) -> Topology | None:
    """Build the model, or report structural problems in ``doc`` and return None."""
    errors = _FORMAT.problems(doc.data)
    for shown in errors:
        path: list[Any] = list(shown.absolute_path)
        if "propertyNames" in shown.absolute_schema_path:
            path.append(shown.instance)  # the offending key itself, not its mapping
        doc.problem(pointer_from_path(path), shown.message, "topology-structure")
    if errors:
        return None
    components = {
        name: Component(
            name=name,
            kind=c["kind"],
            spec=c.get("spec"),
            description=c.get("description", ""),
            inbound=c.get("inbound"),
        )
        for name, c in doc.data["components"].items()
    }
    edges = tuple(
        Edge(
            index=i,
            source=e["from"],
            target=e["to"],
            protocol=e["protocol"],
            external=e.get("external", False),
            operations=tuple(e.get("operations", ())),
            channels=tuple(e.get("channels", ())),
        )
        for i, e in enumerate(doc.data["edges"])
    )
    return Topology(root=doc.path.parent, components=components, edges=edges)


class TopologyError(ValueError):
    """The topology file cannot be used; ``diagnostics`` say why and where."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("; ".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics


def load_topology(path: Path | None = None) -> Topology:
    """Read and parse a topology file (default: the one shipped with the specs)."""
    result = read_document(path or spec_root() / "topology.yaml")
    if isinstance(result, Diagnostic):
        raise TopologyError([result])
    if result.kind is not DocumentKind.TOPOLOGY:
        raise TopologyError(
            [
                Diagnostic(
                    result.display,
                    "",
                    f"is an {result.kind.value} document, not a topology",
                    "kind",
                )
            ]
        )
    topology = parse_topology(result)
    if topology is None:
        raise TopologyError(result.diagnostics)
    return topology
