"""Where everything in the mesh listens: one port per component, per HTTP edge, for the
admin API and for a local Kafka broker.

With a port base the plan is fixed (a real service can be configured before a run):
components at ``base + i`` in topology order, the admin API at ``base + 98``, a local
broker at ``base + 99``, HTTP edges at ``base + 100 + j`` in topology order. Without
one, every port is 0: the operating system picks free ones at bind time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecom_harness.specs import Topology

__all__ = ["SERVED_KINDS", "PortPlan", "http_url"]

SERVED_KINDS = ("gateway", "service", "external")  # components with an HTTP API
ADMIN_OFFSET, KAFKA_OFFSET, EDGE_OFFSET = 98, 99, 100


def http_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass(frozen=True, slots=True)
class PortPlan:
    components: dict[str, int]
    edges: dict[str, int]  # "caller->callee" -> port
    admin: int
    kafka: int

    @classmethod
    def for_topology(cls, topology: Topology, base: int | None = None) -> PortPlan:
        served = [c.name for c in topology.components.values() if c.kind in SERVED_KINDS]
        edges = [f"{e.source}->{e.target}" for e in topology.edges if e.is_http]
        if base is None:
            return cls({n: 0 for n in served}, {e: 0 for e in edges}, 0, 0)
        last = base + EDGE_OFFSET + len(edges) - 1
        if base < 1024 or last > 65535:
            raise ValueError(
                f"--port-base {base} needs ports {base}..{last}: "
                "choose a base from 1024 to "
                f"{65535 - EDGE_OFFSET - len(edges) + 1}"
            )
        if len(served) > ADMIN_OFFSET:
            raise ValueError("too many components for the fixed port plan")
        return cls(
            {n: base + i for i, n in enumerate(served)},
            {e: base + EDGE_OFFSET + j for j, e in enumerate(edges)},
            base + ADMIN_OFFSET,
            base + KAFKA_OFFSET,
        )
