"""Which column each component of the drawing goes in, and in what order.

The client first, then the gateway, then the services by how deep in the call chain they
sit (the longest HTTP path from the gateway), then the external providers. An HTTP edge
that skips a column gets a reserved slot there (a dummy node, as in Sugiyama's method),
so its line can pass between the boxes. Each column is then ordered to cross as few
edges as it can.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from ecom_harness.specs import Edge, Topology

__all__ = ["Slot", "database_owners", "layered_columns"]


@dataclass(slots=True)
class Slot:
    """An item in a column: a component's cell (its box and, under it, its database),
    or a dummy an edge passes through. ``y`` is set when the column is placed."""

    key: str
    height: float
    edge: Edge | None = None
    y: float = 0.0


def database_owners(topology: Topology) -> dict[str, str]:
    """database -> the service whose edge reaches it."""
    kinds = {n: c.kind for n, c in topology.components.items()}
    return {
        e.target: e.source
        for e in topology.edges
        if kinds.get(e.target) == "database" and kinds.get(e.source) == "service"
    }


def _service_depths(topology: Topology) -> dict[str, int]:
    """The longest internal HTTP path from a gateway to each service (1: the gateway
    calls it). A service no HTTP edge reaches (Kafka-only) goes in the deepest column."""
    kinds = {n: c.kind for n, c in topology.components.items()}
    services = [n for n, k in kinds.items() if k == "service"]
    calls: dict[str, list[str]] = defaultdict(list)
    for e in topology.edges:
        if e.is_http and kinds.get(e.target) == "service":
            calls[e.source].append(e.target)
    depth: dict[str, int] = {}
    frontier = [(s, 1) for g, k in kinds.items() if k == "gateway" for s in calls[g]]
    while frontier:  # bounded by the number of services, so a cycle cannot loop forever
        name, d = frontier.pop()
        if depth.get(name, 0) >= d or d > len(services):
            continue
        depth[name] = d
        frontier.extend((t, d + 1) for t in calls[name])
    deepest = max(depth.values(), default=1)
    return {s: depth.get(s, deepest) for s in services}


def _ranks(topology: Topology) -> dict[str, int]:
    kinds = {n: c.kind for n, c in topology.components.items()}
    depths = _service_depths(topology)
    fixed = {"client": 0, "gateway": 1}
    rank = {n: fixed[k] for n, k in kinds.items() if k in fixed}
    rank.update({s: 1 + d for s, d in depths.items()})
    last_service = max(rank.values(), default=1)
    rank.update({n: last_service + 1 for n, k in kinds.items() if k == "external"})
    return rank


def layered_columns(
    topology: Topology, box_height: float, database_height: float, dummy_height: float
) -> list[list[Slot]]:
    """The columns, left to right, each ordered top to bottom."""
    rank = _ranks(topology)
    owners = set(database_owners(topology).values())
    columns: list[list[Slot]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    for name, r in rank.items():
        columns[r].append(Slot(name, box_height + (database_height if name in owners else 0.0)))
    links: set[tuple[str, str]] = set()  # (a slot in column r, a slot in column r + 1)
    for e in topology.edges:
        if not (e.is_http and e.source in rank and e.target in rank) or e.external:
            continue
        chain = [e.source]
        for r in range(rank[e.source] + 1, rank[e.target]):
            columns[r].append(Slot(e.source + "->" + e.target, dummy_height, edge=e))
            chain.append(e.source + "->" + e.target)
        chain.append(e.target)
        links.update(itertools.pairwise(chain))
    _CrossingMinimiser(columns, links).run()
    return columns


class _CrossingMinimiser:
    """Barycentre sweeps down and up, then swaps of neighbours while they help; the
    score is the crossings, then how far the links climb (straighter lines win ties). A
    slot with no HTTP neighbour (a Kafka-only service) sinks to the bottom, by the bus."""

    def __init__(self, columns: list[list[Slot]], links: set[tuple[str, str]]):
        self.columns, self.links = columns, links
        self.left: dict[str, list[str]] = defaultdict(list)
        self.right: dict[str, list[str]] = defaultdict(list)
        for a, b in links:
            self.right[a].append(b)
            self.left[b].append(a)
        self.column_of = {s.key: c for c, slots in enumerate(columns) for s in slots}
        for slots in columns:
            slots.sort(key=self._lonely)  # stable: the topology file's order otherwise
        self.position: dict[str, int] = {}
        self._index()

    def _lonely(self, slot: Slot) -> bool:
        return not (self.left[slot.key] or self.right[slot.key])

    def _index(self) -> None:
        self.position = {s.key: i for slots in self.columns for i, s in enumerate(slots)}

    def score(self) -> float:
        pos, col = self.position, self.column_of
        pairs = [(pos[a], pos[b], col[a]) for a, b in self.links]
        crossed = sum(
            1
            for (a1, b1, c1), (a2, b2, c2) in itertools.combinations(pairs, 2)
            if c1 == c2 and (a1 - a2) * (b1 - b2) < 0
        )
        climb = sum(
            abs(pos[a] / len(self.columns[col[a]]) - pos[b] / len(self.columns[col[b]]))
            for a, b in self.links
        )
        return crossed * 100 + climb

    def _sort(self, c: int, by: dict[str, list[str]]) -> None:
        def key(item: tuple[int, Slot]) -> tuple[bool, float, int]:
            i, slot = item
            seen = [self.position[n] for n in by[slot.key]]
            return (self._lonely(slot), sum(seen) / len(seen) if seen else float(i), i)

        self.columns[c][:] = [s for _, s in sorted(enumerate(self.columns[c]), key=key)]
        self._index()

    def run(self) -> None:
        best = (self.score(), [list(c) for c in self.columns])
        for _ in range(4):
            for c in range(1, len(self.columns)):
                self._sort(c, self.left)
            for c in range(len(self.columns) - 2, -1, -1):
                self._sort(c, self.right)
            score = self.score()
            if score < best[0]:
                best = (score, [list(c) for c in self.columns])
        for c, slots in enumerate(best[1]):
            self.columns[c][:] = slots
        self._index()
        self._swap_while_better(best[0])

    def _swap_while_better(self, score: float) -> None:
        improved = True
        while improved:
            improved = False
            for slots in self.columns:
                for i in range(len(slots) - 1):
                    slots[i], slots[i + 1] = slots[i + 1], slots[i]
                    self._index()
                    candidate = self.score()
                    if candidate < score - 1e-9:
                        score, improved = candidate, True
                    else:
                        slots[i], slots[i + 1] = slots[i + 1], slots[i]
                        self._index()
