"""The topology drawing: where each component goes, that nothing overlaps, that every
edge is drawn in its direction and style; and `topology --format svg`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.harness.viewer import (
    HEIGHT,
    WIDTH,
    Drawing,
    Label,
    drawing_problems,
    drawing_svg,
    layout_topology,
)
from ecom_harness.specs import Topology, load_topology

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


@pytest.fixture(scope="module")
def drawing(topology: Topology) -> Drawing:
    return layout_topology(topology)


def test_every_component_and_edge_is_drawn(topology: Topology, drawing: Drawing) -> None:
    assert set(drawing.nodes) == set(topology.components)
    assert sorted(e.key for e in drawing.edges) == sorted(
        f"{e.source}->{e.target}" for e in topology.edges
    )


def test_nothing_overlaps_at_the_player_size(drawing: Drawing) -> None:
    """Boxes, labels (component names, the frame title, the legend) and lines: no box on
    a box, no label on a label or a box it does not name, no line through a box or a
    label it does not join, everything inside the 1000x440 canvas that the player
    shows at about 1:1 on a 1280x800 screen."""
    assert (drawing.width, drawing.height) == (WIDTH, HEIGHT)
    assert drawing_problems(drawing) == []


def test_the_legibility_check_finds_what_it_promises(drawing: Drawing) -> None:
    """The check above can fail: a box moved onto another, a stray label, a line drawn
    straight through a box, a box pushed off the canvas."""
    broken = Drawing(drawing.width, drawing.height, dict(drawing.nodes), list(drawing.edges))
    broken.frames, broken.labels = list(drawing.frames), list(drawing.labels)
    order = broken.nodes["order-svc"].rect
    user = broken.nodes["user-svc"]
    broken.nodes["user-svc"] = replace(user, rect=replace(order, y=order.y + 10))
    broken.labels.append(Label("a stray caption", order.cx, order.cy, 12))
    client = broken.nodes["client"]
    broken.nodes["client"] = replace(client, rect=replace(client.rect, x=-30))
    gateway, shipping = broken.nodes["api-gateway"].rect, broken.nodes["shipping-svc"].rect
    straight = replace(
        next(e for e in broken.edges if e.key == "api-gateway->shipping-svc"),
        points=((gateway.right, gateway.cy), (shipping.x, shipping.cy)),
    )
    broken.edges = [straight if e.key == straight.key else e for e in broken.edges]
    found = drawing_problems(broken)
    assert "boxes user-svc and order-svc overlap" in found
    assert "label 'a stray caption' overlaps box order-svc" in found
    assert "box client is outside the canvas" in found
    assert any(p.startswith("edge api-gateway->shipping-svc crosses box") for p in found)


def test_the_architecture_reads_left_to_right(drawing: Drawing, topology: Topology) -> None:
    """Client, then the gateway in front of every service, externals apart on the right
    inside their frame; each database right under its service; the bus along the bottom."""
    nodes = drawing.nodes
    kinds = {n: c.kind for n, c in topology.components.items()}
    services = [nodes[n].rect for n, k in kinds.items() if k == "service"]
    externals = [nodes[n].rect for n, k in kinds.items() if k == "external"]
    assert nodes["client"].rect.right < nodes["api-gateway"].rect.x
    assert nodes["api-gateway"].rect.right < min(r.x for r in services)
    assert max(r.right for r in services) < min(r.x for r in externals)
    ((frame, title),) = drawing.frames
    assert title.text == "external providers"
    inside = {n for n, box in nodes.items() if box.rect.inside(frame)}
    assert inside == {n for n, k in kinds.items() if k == "external"}
    for edge in topology.edges:
        if kinds[edge.target] == "database":
            service, database = nodes[edge.source].rect, nodes[edge.target].rect
            assert abs(service.cx - database.cx) < 1 and database.y > service.bottom
    bus = nodes["kafka"].rect
    assert all(
        bus.y > nodes[n].rect.bottom for n, k in kinds.items() if k in ("service", "database")
    )


def test_edges_run_from_caller_to_callee(drawing: Drawing) -> None:
    """Each route starts on its source's box and ends on its target's (the arrowhead)."""

    def on_border(point: tuple[float, float], name: str) -> bool:
        r = drawing.nodes[name].rect
        x, y = point
        within = r.x - 0.5 <= x <= r.right + 0.5 and r.y - 0.5 <= y <= r.bottom + 0.5
        border = min(abs(x - r.x), abs(x - r.right), abs(y - r.y), abs(y - r.bottom)) < 0.5
        return within and border

    for edge in drawing.edges:
        assert on_border(edge.points[0], edge.source), edge.key
        assert on_border(edge.points[-1], edge.target), edge.key


def test_svg_marks_direction_and_style_per_protocol(drawing: Drawing) -> None:
    root = ET.fromstring(drawing_svg(drawing))
    assert root.get("viewBox") == f"0 0 {WIDTH:g} {HEIGHT:g}"
    edges = {p.get("data-edge"): p for p in root.iter(f"{SVG}path") if p.get("data-edge")}
    assert set(edges) == {e.key for e in drawing.edges}
    style = root.find(f"{SVG}style")
    assert style is not None and style.text is not None
    dashed = set(re.findall(r"\.(tp-proto-[a-z]+)[^{]*\{[^}]*stroke-dasharray", style.text))
    for key, path in edges.items():
        assert path.get("marker-end", "").startswith("url(#tp-arrow")  # the arrowhead: direction
        classes = set((path.get("class") or "").split())
        protocol = path.get("data-protocol")
        if protocol in ("http", "https"):
            assert not classes & dashed, f"{key} is HTTP: solid"
        if protocol == "kafka":
            assert "tp-proto-kafka" in dashed and "tp-proto-kafka" in classes, f"{key}: dashed"
    names = {g.get("data-node") for g in root.iter(f"{SVG}g") if g.get("data-node")}
    assert names == set(drawing.nodes)


def test_topology_command_prints_the_svg() -> None:
    result = CliRunner().invoke(cli, ["topology", "--format", "svg"])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.output)
    assert root.tag == f"{SVG}svg"
    assert {g.get("data-node") for g in root.iter(f"{SVG}g") if g.get("data-node")} == set(
        load_topology().components
    )


def test_a_bigger_topology_is_drawn_as_cleanly(tmp_path: Path) -> None:
    """The layout comes from kinds and edges, not names: two more services (one behind
    another, each with its database, one on Kafka) still draw with nothing overlapping,
    on a taller canvas."""
    data = yaml.safe_load((REPO / "specs" / "topology.yaml").read_text())
    data["components"].update(
        {
            "review-svc": {"kind": "service"},
            "review-db": {"kind": "database"},
            "search-svc": {"kind": "service"},
            "search-db": {"kind": "database"},
        }
    )
    data["edges"] += [
        {"from": "api-gateway", "to": "review-svc", "protocol": "http"},
        {"from": "review-svc", "to": "review-db", "protocol": "postgresql"},
        {"from": "review-svc", "to": "kafka", "protocol": "kafka", "channels": ["orders"]},
        {"from": "catalog-svc", "to": "search-svc", "protocol": "http"},
        {"from": "search-svc", "to": "search-db", "protocol": "postgresql"},
    ]
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(data))
    bigger = layout_topology(load_topology(tmp_path / "topology.yaml"))
    assert drawing_problems(bigger) == []
    assert bigger.height > HEIGHT and set(bigger.nodes) >= {"review-svc", "search-db"}
    assert bigger.nodes["search-svc"].rect.x > bigger.nodes["catalog-svc"].rect.right
