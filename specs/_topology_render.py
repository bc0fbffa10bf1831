"""Render a topology as text, Mermaid or Graphviz dot; external edges are marked."""

from __future__ import annotations

from collections.abc import Callable

from ._topology import Edge, Topology

__all__ = ["TOPOLOGY_FORMATS", "render_topology"]


def _edge_label(edge: Edge) -> str:
    carried = edge.operations or edge.channels
    label = edge.protocol + (" (external)" if edge.external else "")
    return f"{label}: {', '.join(carried)}" if carried else label


def _text(topology: Topology) -> str:
    width = max(len(name) for name in topology.components)
    lines = ["components:"]
    lines += [
        f"  {c.name:<{width}}  {c.kind:<8}  {c.spec or '-'}" for c in topology.components.values()
    ]
    lines.append("edges:")
    for edge in topology.edges:
        marker = "  [external]" if edge.external else ""
        lines.append(f"  {edge.source} -> {edge.target}  {edge.protocol}{marker}")
        carried = edge.operations or edge.channels
        if carried:
            lines.append(f"      {', '.join(carried)}")
    return "\n".join(lines)


def _mermaid_id(name: str) -> str:
    return name.replace("-", "_")


_MERMAID_SHAPES = {
    "database": ("[(", ")]"),
    "broker": ("[/", "/]"),
    "cache": ("[(", ")]"),
    "external": ("{{", "}}"),
    "client": ("([", "])"),
}


def _mermaid(topology: Topology) -> str:
    lines = ["flowchart LR"]
    for c in topology.components.values():
        opening, closing = _MERMAID_SHAPES.get(c.kind, ("[", "]"))
        lines.append(f'  {_mermaid_id(c.name)}{opening}"{c.name}"{closing}')
    for edge in topology.edges:
        arrow = "-.->" if edge.external else "-->"
        lines.append(
            f'  {_mermaid_id(edge.source)} {arrow}|"{_edge_label(edge)}"| '
            f"{_mermaid_id(edge.target)}"
        )
    return "\n".join(lines)


_DOT_SHAPES = {
    "database": "cylinder",
    "cache": "cylinder",
    "broker": "parallelogram",
    "external": "hexagon",
    "client": "oval",
    "gateway": "box3d",
}


def _dot(topology: Topology) -> str:
    lines = ["digraph topology {", "  rankdir=LR;", "  node [shape=box];"]
    for c in topology.components.values():
        lines.append(f'  "{c.name}" [shape={_DOT_SHAPES.get(c.kind, "box")}];')
    for edge in topology.edges:
        style = ", style=dashed, color=red" if edge.external else ""
        label = _edge_label(edge).replace('"', '\\"')
        lines.append(f'  "{edge.source}" -> "{edge.target}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines)


TOPOLOGY_FORMATS: dict[str, Callable[[Topology], str]] = {
    "text": _text,
    "mermaid": _mermaid,
    "dot": _dot,
}


def render_topology(topology: Topology, fmt: str = "text") -> str:
    """The topology in ``fmt`` (one of :data:`TOPOLOGY_FORMATS`)."""
    return TOPOLOGY_FORMATS[fmt](topology)
