"""Rules that join the topology to the specs: every edge is backed by a spec, and every
operation or channel named on an edge exists there; AsyncAPI senders and receivers are
components whose Kafka edges carry their channels."""

from __future__ import annotations

from pathlib import Path

from ecom_harness.specs._diagnostics import join_pointer
from ecom_harness.specs._documents import Document, DocumentKind
from ecom_harness.specs._operations import iter_operations
from ecom_harness.specs._pointers import unescape_token
from ecom_harness.specs._topology import Component, Topology

from ._asyncapi import channel_messages

__all__ = ["SpecLookup", "check_spec_links"]

_SPEC_KIND = {
    "gateway": DocumentKind.OPENAPI,
    "service": DocumentKind.OPENAPI,
    "external": DocumentKind.OPENAPI,
    "broker": DocumentKind.ASYNCAPI,
}

SpecLookup = dict[Path, Document]


def check_spec_links(doc: Document, topology: Topology, specs: SpecLookup) -> None:
    """Report broken links between ``doc`` (the topology) and the loaded ``specs``."""
    component_specs = {
        name: spec
        for name, component in topology.components.items()
        if (spec := _component_spec(doc, topology, component, specs)) is not None
    }
    _check_edges(doc, topology, component_specs)
    for name, spec in component_specs.items():
        if spec.kind is DocumentKind.ASYNCAPI:
            _check_async_roles(doc, topology, spec)
        else:
            _check_component_name(spec, name)


def _component_spec(
    doc: Document, topology: Topology, component: Component, specs: SpecLookup
) -> Document | None:
    pointer = join_pointer(component.pointer, "spec")
    expected = _SPEC_KIND.get(component.kind)
    path = topology.spec_path(component)
    if path is None:
        if expected is not None:
            doc.problem(
                component.pointer,
                f"a {component.kind} needs a spec ({expected.value})",
                "topology-spec",
            )
        return None
    spec = specs.get(path.resolve())
    if spec is None:
        doc.problem(
            pointer, f"spec file '{component.spec}' is missing or unreadable", "topology-spec"
        )
        return None
    if expected is not None and spec.kind is not expected:
        doc.problem(
            pointer,
            f"a {component.kind} is described by an {expected.value} "
            f"document; '{component.spec}' is {spec.kind.value}",
            "topology-spec",
        )
        return None
    return spec


def _check_component_name(spec: Document, name: str) -> None:
    info = spec.data.get("info")
    declared = info.get("x-component") if isinstance(info, dict) else None
    if declared != name:
        spec.problem(
            "/info/x-component" if declared else "/info",
            f"info.x-component must be '{name}', the topology's name for this "
            f"component (found {declared!r})",
            "topology-component-name",
        )


def _check_edges(doc: Document, topology: Topology, specs: dict[str, Document]) -> None:
    for edge in topology.edges:
        callee = specs.get(edge.target)
        if edge.is_http or edge.protocol == "kafka":
            names, key = (
                (edge.operations, "operations") if edge.is_http else (edge.channels, "channels")
            )
            if callee is None:
                if topology.components[edge.target].spec:
                    continue  # its missing or broken spec is reported already
                doc.problem(
                    f"{edge.pointer}/to",
                    f"no spec backs this edge: '{edge.target}' has none",
                    "topology-edge-spec",
                )
                continue
            if not names:
                doc.problem(
                    edge.pointer,
                    f"a {edge.protocol} edge must list the {key} that travel on it",
                    "topology-edge-spec",
                )
                continue
            known = (
                _operation_ids(callee)
                if edge.is_http
                else set(_mapping(callee.data.get("channels")))
            )
            for index, name in enumerate(names):
                if name not in known:
                    kind = "operation" if edge.is_http else "channel"
                    doc.problem(
                        f"{edge.pointer}/{key}/{index}",
                        f"'{edge.target}' has no {kind} '{name}' ({callee.display})",
                        "topology-edge-spec",
                    )
        elif edge.operations or edge.channels:
            doc.problem(
                edge.pointer,
                f"a {edge.protocol} edge carries no operations or channels",
                "topology-edge-spec",
            )


def _operation_ids(spec: Document) -> set[str]:
    return {
        op["operationId"]
        for _p, _m, _path, op in iter_operations(spec.data)
        if isinstance(op.get("operationId"), str)
    }


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _check_async_roles(doc: Document, topology: Topology, spec: Document) -> None:
    """Each AsyncAPI operation's x-component is a component whose kafka edge carries the
    operation's channel, and each channel on a kafka edge is used by that component."""
    kafka_channels = {
        name: {c for e in topology.edges_from(name) if e.protocol == "kafka" for c in e.channels}
        for name in topology.components
    }
    used: set[tuple[str, str]] = set()
    for op_id, operation in _mapping(spec.data.get("operations")).items():
        if not isinstance(operation, dict):
            continue
        pointer = join_pointer("/operations", op_id)
        component = operation.get("x-component")
        if component not in topology.components:
            spec.problem(
                join_pointer(pointer, "x-component") if component else pointer,
                f"x-component must name the sending or receiving component (found {component!r})",
                "asyncapi-component",
            )
            continue
        ref = _mapping(operation.get("channel")).get("$ref")
        prefix = "#/channels/"
        if not isinstance(ref, str) or not ref.startswith(prefix):
            continue  # reported by the AsyncAPI lint (asyncapi-channel-ref)
        channel = unescape_token(ref[len(prefix) :])
        used.add((str(component), channel))
        if channel not in kafka_channels[str(component)]:
            spec.problem(
                join_pointer(pointer, "channel"),
                f"'{component}' uses channel "
                f"'{channel}' but its kafka edge in {doc.display} does not list it",
                "asyncapi-component",
            )
    known_channels = {cid for cid, _mid in channel_messages(spec.data)}
    for edge in topology.edges:
        if edge.protocol != "kafka" or edge.target not in topology.components:
            continue
        for index, channel in enumerate(edge.channels):
            if channel in known_channels and (edge.source, channel) not in used:
                doc.problem(
                    f"{edge.pointer}/channels/{index}",
                    f"'{edge.source}' has no operation on channel '{channel}' in {spec.display}",
                    "topology-edge-spec",
                )
