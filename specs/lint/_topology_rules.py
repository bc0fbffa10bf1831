"""The architecture rules a topology must keep (see DESIGN.md, "Rules that the topology
lint enforces"). Each rule is a small function reporting into the topology document."""

from __future__ import annotations

from collections.abc import Callable

from ecom_harness.specs._documents import Document
from ecom_harness.specs._topology import Edge, Topology

__all__ = ["check_topology_rules"]

# Which protocol reaches which kind of component.
_PROTOCOLS_FOR_KIND = {
    "gateway": ("http", "https"),
    "service": ("http", "https"),
    "external": ("https",),
    "broker": ("kafka",),
    "cache": ("redis",),
    "database": ("postgresql",),
}


def check_topology_rules(doc: Document, topology: Topology) -> bool:
    """Report every broken rule. The other rules need every edge's ends to name known
    components, so they run only then; returns whether they did."""
    if not _known_names(doc, topology):
        return False
    for rule in _RULES:
        rule(doc, topology)
    return True


def _known_names(doc: Document, topology: Topology) -> bool:
    ok = True
    for edge in topology.edges:
        for end, name in (("from", edge.source), ("to", edge.target)):
            if name not in topology.components:
                doc.problem(
                    f"{edge.pointer}/{end}",
                    f"unknown component '{name}'",
                    "topology-unknown-component",
                )
                ok = False
    return ok


def _kind(topology: Topology, name: str) -> str:
    return topology.components[name].kind


def _client_edges_end_at_gateway(doc: Document, topology: Topology) -> None:
    for edge in topology.edges:
        if _kind(topology, edge.source) == "client" and _kind(topology, edge.target) != "gateway":
            doc.problem(
                f"{edge.pointer}/to",
                f"a client may only reach the gateway; '{edge.target}' is a "
                f"{_kind(topology, edge.target)}",
                "topology-client-edge",
            )
        if _kind(topology, edge.target) == "client":
            doc.problem(f"{edge.pointer}/to", "nothing calls the client", "topology-client-edge")


def _external_edges_point_outwards(doc: Document, topology: Topology) -> None:
    for edge in topology.edges:
        source_external = _kind(topology, edge.source) == "external"
        target_external = _kind(topology, edge.target) == "external"
        if source_external:
            doc.problem(
                f"{edge.pointer}/from",
                f"an edge never starts at an external provider ('{edge.source}'): "
                "the internal service opens the connection",
                "topology-external-edge",
            )
        if target_external and not edge.external:
            doc.problem(
                edge.pointer,
                f"edge to external provider '{edge.target}' must be marked 'external: true'",
                "topology-external-edge",
            )
        if edge.external and not target_external:
            doc.problem(
                f"{edge.pointer}/external",
                f"'{edge.target}' is not an external provider",
                "topology-external-edge",
            )


def _protocol_fits_target(doc: Document, topology: Topology) -> None:
    for edge in topology.edges:
        kind = _kind(topology, edge.target)
        allowed = _PROTOCOLS_FOR_KIND.get(kind, ())
        if edge.protocol not in allowed:
            doc.problem(
                f"{edge.pointer}/protocol",
                f"a {kind} is reached over {' or '.join(allowed) or 'nothing'}, "
                f"not {edge.protocol}",
                "topology-protocol",
            )


def _kafka_only_components(doc: Document, topology: Topology) -> None:
    for component in topology.components.values():
        if component.inbound != "kafka-only":
            continue
        for edge in topology.edges_to(component.name):
            doc.problem(
                f"{edge.pointer}/to",
                f"'{component.name}' is reached only through Kafka; '{edge.source}' "
                "must publish an event instead of calling it",
                "topology-kafka-only",
            )
        if not any(e.protocol == "kafka" for e in topology.edges_from(component.name)):
            doc.problem(
                component.pointer,
                f"'{component.name}' is fed only by Kafka but has no kafka edge",
                "topology-kafka-only",
            )


def _one_database_per_service(doc: Document, topology: Topology) -> None:
    owner: dict[str, Edge] = {}
    for edge in topology.edges:
        if _kind(topology, edge.target) != "database":
            continue
        if _kind(topology, edge.source) != "service":
            doc.problem(
                f"{edge.pointer}/from",
                f"only services own databases; '{edge.source}' is a {_kind(topology, edge.source)}",
                "topology-database",
            )
        elif edge.target in owner:
            first = owner[edge.target]
            doc.problem(
                f"{edge.pointer}/to",
                f"database '{edge.target}' already belongs to "
                f"'{first.source}' ({first.pointer}); no two services share one",
                "topology-database",
            )
        else:
            owner[edge.target] = edge
    for component in topology.components.values():
        if component.kind == "service":
            owned = [
                e
                for e in topology.edges_from(component.name)
                if _kind(topology, e.target) == "database"
            ]
            if len(owned) != 1:
                doc.problem(
                    component.pointer,
                    f"service '{component.name}' must own exactly one database, has {len(owned)}",
                    "topology-database",
                )
        elif component.kind == "database" and component.name not in owner:
            doc.problem(
                component.pointer,
                f"database '{component.name}' has no owning service",
                "topology-database",
            )


def _no_duplicate_edges(doc: Document, topology: Topology) -> None:
    seen: dict[tuple[str, str, str], Edge] = {}
    for edge in topology.edges:
        key = (edge.source, edge.target, edge.protocol)
        if key in seen:
            doc.problem(
                edge.pointer,
                f"duplicate edge {edge.source} -> {edge.target} "
                f"({edge.protocol}); first at {seen[key].pointer}",
                "topology-duplicate-edge",
            )
        else:
            seen[key] = edge


_RULES: tuple[Callable[[Document, Topology], None], ...] = (
    _client_edges_end_at_gateway,
    _external_edges_point_outwards,
    _protocol_fits_target,
    _kafka_only_components,
    _one_database_per_service,
    _no_duplicate_edges,
)
