"""Where each component and edge of a topology goes in the drawing.

Made for the shape every topology of this platform has: the client on the left, the
gateway in front of the services, the services in columns (see :mod:`._columns`), each
service's database right under it, the cache under its caller, the broker as a bus
along the bottom, and the external providers apart on the right in a frame of their own.
An HTTP edge that skips a column passes it through its reserved slot; a Kafka edge runs
down a lane of its own in a gutter of its column to the bus. Everything follows from the
topology's kinds and edges, not from names.

The coordinates are the SVG ``viewBox``'s (:data:`WIDTH` x :data:`HEIGHT`), sized to show
the shipped topology at about 1:1 in the player on a 1280x800 screen; a topology with
taller columns gets a taller canvas, which the player scales to fit.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from ecom_harness.specs import Topology

from ._columns import Slot, database_owners, layered_columns
from ._geometry import Point, Rect, text_width

__all__ = [
    "HEIGHT",
    "LEGEND",
    "WIDTH",
    "Drawing",
    "EdgeRoute",
    "Label",
    "NodeBox",
    "layout_topology",
]

WIDTH, HEIGHT = 1000.0, 440.0
FONT, SMALL_FONT = 12.0, 11.0
LEGEND = (("http", "HTTP call"), ("kafka", "Kafka event"), ("store", "Redis / PostgreSQL"))

_BOX_H, _DB_H, _DB_GAP = 32.0, 26.0, 12.0
_ROW_GAP, _MIN_GAP, _DUMMY_H, _DUMMY_REACH = 18.0, 10.0, 10.0, 70.0
_TOP, _BUS_H, _LEGEND_H = 44.0, 22.0, 36.0
_LANE_STEP, _PAD_X = 8.0, 14.0
_CACHE_DROP = 70.0  # from the bottom of the cache's user to the cache's top
# Column centres by role; the service columns share the span between the two.
_CLIENT_X, _GATEWAY_X, _EXTERNAL_X = 52.0, 190.0, 880.0
_SERVICES_FROM, _SERVICES_TO = 400.0, 640.0
_LEAST_WIDTH = {"client": 80.0, "gateway": 124.0, "service": 128.0, "external": 110.0}


@dataclass(frozen=True, slots=True)
class Label:
    """A line of text and the box it covers (estimated generously)."""

    text: str
    x: float  # the centre of the text, on its baseline
    y: float
    size: float
    owner: str | None = None  # the component it names, if any

    @property
    def rect(self) -> Rect:
        w = text_width(self.text, self.size)
        return Rect(self.x - w / 2, self.y - self.size * 0.8, w, self.size)


@dataclass(frozen=True, slots=True)
class NodeBox:
    name: str
    kind: str
    rect: Rect
    label: Label
    description: str = ""


@dataclass(frozen=True, slots=True)
class EdgeRoute:
    """One topology edge as a polyline from its source's box to its target's."""

    source: str
    target: str
    protocol: str
    external: bool
    points: tuple[Point, ...]
    carries: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.source}->{self.target}"

    def segments(self) -> list[tuple[Point, Point]]:
        return list(itertools.pairwise(self.points))


@dataclass(slots=True)
class Drawing:
    width: float
    height: float
    nodes: dict[str, NodeBox] = field(default_factory=dict)
    edges: list[EdgeRoute] = field(default_factory=list)
    frames: list[tuple[Rect, Label]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)  # frame titles and the legend

    def all_labels(self) -> list[Label]:
        return [n.label for n in self.nodes.values()] + self.labels


class _Builder:
    """Places one topology's components and routes its edges onto a :class:`Drawing`."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.kinds = {n: c.kind for n, c in topology.components.items()}
        self.drawing = Drawing(WIDTH, HEIGHT)
        self.dummies: dict[str, list[Point]] = defaultdict(list)
        self._fit(HEIGHT)

    def _fit(self, height: float) -> None:
        """Size the canvas: the bus and the legend along its bottom, the columns above."""
        self.drawing.height = height
        self.bus_y = height - _LEGEND_H - _BUS_H
        self.top, self.bottom = _TOP, self.bus_y - 26

    def add(self, name: str, rect: Rect, size: float = FONT) -> None:
        drum = 3.0 if self.kinds[name] in ("database", "cache") else 0.0  # below the lid
        label = Label(name, rect.cx, rect.cy + size * 0.35 + drum, size, owner=name)
        description = self.topology.components[name].description
        self.drawing.nodes[name] = NodeBox(name, self.kinds[name], rect, label, description)

    def build(self) -> Drawing:
        columns = layered_columns(self.topology, _BOX_H, _DB_GAP + _DB_H, _DUMMY_H)
        tallest = max(
            (sum(s.height for s in slots) + _MIN_GAP * (len(slots) - 1) for slots in columns),
            default=0.0,
        )
        if tallest > self.bottom - self.top:  # a bigger topology: a taller drawing, to scale
            self._fit(HEIGHT + tallest - (self.bottom - self.top))
        for rank, slots in enumerate(columns):
            if rank == len(columns) - 1 and rank > 1:
                self._place_externals(slots)
            else:
                self._place_column(rank, len(columns) - 1, slots)
        self._face_gateway(columns)
        self._place_databases()
        self._place_caches()
        self._place_bus()
        self._route_edges()
        self._frame_externals()
        self._legend()
        return self.drawing

    # --- boxes ----------------------------------------------------------------------------

    def _place_column(self, rank: int, last: int, slots: list[Slot]) -> None:
        x = _column_x(rank, last)
        _stack(slots, self.top, self.bottom)
        cells = [s for s in slots if s.edge is None]
        if rank == 1 and len(slots) == 1:
            slots[0].y = (self.top + self.bottom) / 2 - 30  # one gateway: level with the middle
        widest = max((_box_width(s.key, FONT, _LEAST_WIDTH["service"]) for s in cells), default=0.0)
        for slot in slots:
            if slot.edge is not None:
                self.dummies[slot.key].append((x, slot.y))
                continue
            kind = self.kinds[slot.key]
            width = widest if kind == "service" else _box_width(slot.key, FONT, _LEAST_WIDTH[kind])
            self.add(slot.key, Rect.centred(x, slot.y, width, _BOX_H))

    def _face_gateway(self, columns: list[list[Slot]]) -> None:
        """A single client sits level with the first gateway, so that line is straight."""
        gateways = [s.key for s in columns[1] if s.edge is None] if len(columns) > 1 else []
        if len(columns[0]) != 1 or not gateways:
            return
        client = self.drawing.nodes[columns[0][0].key].rect
        gateway = self.drawing.nodes[gateways[0]].rect
        self.add(columns[0][0].key, Rect.centred(client.cx, gateway.cy, client.w, client.h))

    def _place_externals(self, slots: list[Slot]) -> None:
        """Each provider level with the mean of its callers, then pushed apart."""
        callers: dict[str, list[float]] = defaultdict(list)
        for e in self.topology.edges:
            if e.source in self.drawing.nodes:
                callers[e.target].append(self.drawing.nodes[e.source].rect.cy)
        for slot in slots:
            seen = callers[slot.key]
            slot.y = sum(seen) / len(seen) if seen else (self.top + self.bottom) / 2
        slots.sort(key=lambda s: s.y)
        pitch = _BOX_H + _ROW_GAP
        for a, b in itertools.pairwise(slots):
            b.y = max(b.y, a.y + pitch)
        overflow = slots[-1].y + _BOX_H / 2 - self.bottom if slots else 0.0
        for slot in slots:
            slot.y -= max(0.0, overflow)
        for slot in slots:
            width = _box_width(slot.key, FONT, _LEAST_WIDTH["external"])
            self.add(slot.key, Rect.centred(_EXTERNAL_X, slot.y, width, _BOX_H))

    def _place_databases(self) -> None:
        for database, owner in database_owners(self.topology).items():
            box = self.drawing.nodes[owner].rect
            width = _box_width(database, SMALL_FONT, 96)
            rect = Rect.centred(box.cx, box.bottom + _DB_GAP + _DB_H / 2, width, _DB_H)
            self.add(database, rect, SMALL_FONT)

    def _place_caches(self) -> None:
        """A cache right under the first component that uses it (the gateway)."""
        for name, kind in self.kinds.items():
            nodes = self.drawing.nodes
            users = [e.source for e in self.topology.edges_to(name) if e.source in nodes]
            if kind != "cache" or not users:
                continue
            above = self.drawing.nodes[users[0]].rect
            width = _box_width(name, FONT, 90)
            self.add(name, Rect(above.cx - width / 2, above.bottom + _CACHE_DROP, width, _BOX_H))

    def _place_bus(self) -> None:
        """The broker as a bar under the service columns, wide enough for every lane."""
        for name, kind in self.kinds.items():
            lanes = self._lanes(name) if kind == "broker" else {}
            if not lanes:
                continue
            xs = [x for leave, (x, _) in lanes.values() for x in (leave[0], x)]
            left, right = min(xs), max(xs)
            self.add(name, Rect(left - 12, self.bus_y, right - left + 24, _BUS_H))

    # --- edges ----------------------------------------------------------------------------

    def _lanes(self, broker: str) -> dict[str, tuple[Point, Point]]:
        """Per Kafka client: where it leaves its box and the top of its own lane. Lanes
        run in the gutter left of their column, except for the rightmost column, whose
        run right of it (away from the calls coming in). The lower a box, the nearer its
        lane, so no lane crosses a box of its own column."""
        by_column: dict[float, list[str]] = defaultdict(list)
        for e in self.topology.edges_to(broker):
            if e.source in self.drawing.nodes:
                by_column[self.drawing.nodes[e.source].rect.x].append(e.source)
        rightmost = max(by_column, default=0.0)
        lanes: dict[str, tuple[Point, Point]] = {}
        for left, names in by_column.items():
            names.sort(key=lambda n: self.drawing.nodes[n].rect.y)
            for i, name in enumerate(names):
                box = self.drawing.nodes[name].rect
                step, leave_y = _LANE_STEP * (len(names) - i), box.bottom - 7
                if left == rightmost and len(by_column) > 1:
                    lanes[name] = ((box.right, leave_y), (box.right + step, leave_y))
                else:
                    lanes[name] = ((box.x, leave_y), (left - step, leave_y))
        return lanes

    def _route_edges(self) -> None:
        nodes = self.drawing.nodes
        lanes = {n: self._lanes(n) for n, k in self.kinds.items() if k == "broker"}
        for e in self.topology.edges:
            if e.source not in nodes or e.target not in nodes:
                continue
            source, target = nodes[e.source].rect, nodes[e.target].rect
            if e.source in lanes.get(e.target, {}):
                leave, (lane_x, lane_y) = lanes[e.target][e.source]
                points: list[Point] = [leave, (lane_x, lane_y), (lane_x, target.y)]
            elif abs(source.cx - target.cx) < 1 and target.y > source.bottom:
                points = [(source.cx, source.bottom), (target.cx, target.y)]  # straight down
            else:
                middle = [
                    (x + dx, y)  # level across the column it skips
                    for x, y in self.dummies.get(f"{e.source}->{e.target}", [])
                    for dx in (-_DUMMY_REACH, _DUMMY_REACH)
                ]
                start = _side(source, middle[0] if middle else (target.cx, target.cy))
                end = _side(target, middle[-1] if middle else (source.cx, source.cy))
                points = [start, *middle, end]
            carries = e.operations or e.channels
            route = EdgeRoute(e.source, e.target, e.protocol, e.external, tuple(points), carries)
            self.drawing.edges.append(route)

    # --- frame and legend -----------------------------------------------------------------

    def _frame_externals(self) -> None:
        externals = [n.rect for n in self.drawing.nodes.values() if n.kind == "external"]
        if not externals:
            return
        left = min(r.x for r in externals) - 16
        right = max(r.right for r in externals) + 16
        top = min(r.y for r in externals) - 34
        bottom = max(r.bottom for r in externals) + 14
        frame = Rect(left, top, right - left, bottom - top)
        title = Label("external providers", frame.cx, top + 16, SMALL_FONT)
        self.drawing.frames.append((frame, title))
        self.drawing.labels.append(title)

    def _legend(self) -> None:
        """One label per line style, each after a 30-px swatch the SVG draws."""
        x, y = 16.0, self.drawing.height - 16
        for _style, text in LEGEND:
            width = text_width(text, SMALL_FONT)
            self.drawing.labels.append(Label(text, x + 30 + width / 2, y, SMALL_FONT))
            x += 30 + width + 18


def _column_x(rank: int, last: int) -> float:
    if rank == 0:
        return _CLIENT_X
    if rank == 1:
        return _GATEWAY_X
    services = last - 2  # the service columns: ranks 2 .. last - 1
    if services <= 1:
        return (_SERVICES_FROM + _SERVICES_TO) / 2
    return _SERVICES_FROM + (rank - 2) * (_SERVICES_TO - _SERVICES_FROM) / (services - 1)


def _stack(slots: list[Slot], top: float, bottom: float) -> None:
    """Spread the slots over [top, bottom], centred, with even gaps (shrunk if crowded)."""
    if not slots:
        return
    content = sum(s.height for s in slots)
    gaps = len(slots) - 1
    gap = (
        _ROW_GAP if gaps == 0 else max(_MIN_GAP, min(_ROW_GAP * 2, (bottom - top - content) / gaps))
    )
    y = top + max(0.0, (bottom - top - content - gap * gaps) / 2)
    for slot in slots:
        slot.y = y + (min(slot.height, _BOX_H) if slot.edge is None else slot.height) / 2
        y += slot.height + gap


def _box_width(name: str, size: float, least: float) -> float:
    return max(least, text_width(name, size) + 2 * _PAD_X)


def _side(box: Rect, towards: Point) -> Point:
    """The middle of the side of ``box`` that faces ``towards``: left or right for what
    lies beside it, top or bottom for what is straight above or below."""
    dx, dy = towards[0] - box.cx, towards[1] - box.cy
    if abs(dx) >= box.w / 2:
        return (box.right if dx > 0 else box.x, box.cy)
    return (box.cx, box.bottom if dy > 0 else box.y)


def layout_topology(topology: Topology) -> Drawing:
    """The drawing of ``topology``: boxes, edge routes, the external frame and a legend."""
    return _Builder(topology).build()
