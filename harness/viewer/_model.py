"""What the player shows, as plain data: runs of journal entries with the expectations
judged on them, in the compact form the page reads (one JSON document, embedded in the
HTML report or streamed to the live player entry by entry).

Journal entries come in as :meth:`Journal.save` writes them (already redacted when
recorded); this module only drops transport noise (``host``, ``connection``, ...) and
rounds numbers, so a run of a few thousand interactions stays a few MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ecom_harness.specs import Topology

__all__ = [
    "ExpectationMark",
    "PageData",
    "RunRecord",
    "compact_entry",
    "page_data",
    "run_json",
    "topology_meta",
]

# Headers every HTTP client sends that say nothing about the exchange.
_NOISE_HEADERS = frozenset(
    {"host", "connection", "accept-encoding", "content-length", "user-agent", "keep-alive"}
)
Status = Literal["passed", "failed", "recorded", "running", "error"]


@dataclass(frozen=True, slots=True)
class ExpectationMark:
    """One judged expectation: ``seqs`` are the journal entries it concerns (where the
    failure shows), ``edge`` the edge it is about when no entry shows it (a call that
    never happened)."""

    text: str
    passed: bool
    detail: str = ""
    seqs: tuple[int, ...] = ()
    edge: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "passed": self.passed,
            "detail": self.detail,
            "seqs": list(dict.fromkeys(self.seqs)),  # each entry once, in order
            "edge": self.edge,
        }


@dataclass(slots=True)
class RunRecord:
    """A run to show: a scenario's (with expectations) or a bare journal's."""

    name: str
    title: str
    entries: list[dict[str, Any]]
    description: str = ""
    status: Status = "recorded"
    expectations: list[ExpectationMark] = field(default_factory=list)


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if k.lower() not in _NOISE_HEADERS}


def compact_entry(entry: Mapping[str, Any], broker: str, start: float) -> dict[str, Any]:
    """One saved journal entry as the page reads it; ``start`` is the run's first time.
    ``late``: the entry belongs to an earlier scenario on the mesh (shown, not judged)."""
    when = round((float(entry.get("time", start)) - start) * 1000, 1)
    if entry.get("kind") == "event":
        return {
            "seq": entry["seq"],
            "kind": "event",
            "t": when,
            "from": entry["publisher"],
            "to": broker,
            "topic": entry["topic"],
            "type": entry.get("message_type", ""),
            "key": entry.get("key", ""),
            "id": entry.get("event_id", ""),
            "partition": entry.get("partition"),
            "offset": entry.get("offset"),
            "value": entry.get("value"),
            "groups": list(entry.get("groups", ())),
            "dead": list(entry.get("dead_lettered", ())),
            "violations": list(entry.get("violations", ())),
            "late": bool(entry.get("late")),
        }
    return {
        "seq": entry["seq"],
        "kind": "http",
        "t": when,
        "from": entry["caller"],
        "to": entry["callee"],
        "op": entry.get("operation_id"),
        "method": entry.get("method", ""),
        "path": entry.get("path", ""),
        "query": entry.get("query", ""),
        "status": entry.get("status"),
        "ms": round(float(entry.get("duration_ms", 0.0)), 1),
        "req": {
            "headers": _headers(entry.get("request_headers")),
            "body": entry.get("request_body"),
        },
        "res": {
            "headers": _headers(entry.get("response_headers")),
            "body": entry.get("response_body"),
        },
        "violations": list(entry.get("violations", ())),
        "fault": entry.get("fault"),
        "error": entry.get("error"),
        "late": bool(entry.get("late")),
    }


def topology_meta(topology: Topology, drawing_order: Iterable[str]) -> dict[str, Any]:
    """What the page needs to know of the topology: each component's kind, the order of
    lifelines (the drawing's, left to right), and the broker's name."""
    kinds = {n: c.kind for n, c in topology.components.items()}
    kind_rank = {"client": 0, "gateway": 1, "service": 2, "broker": 3, "external": 4}
    order = [n for n in drawing_order if kinds.get(n) in kind_rank]
    order.sort(key=lambda n: kind_rank[kinds[n]])  # stable: the drawing's order within
    brokers = [n for n, k in kinds.items() if k == "broker"]
    return {"kinds": kinds, "order": order, "broker": brokers[0] if brokers else "kafka"}


@dataclass(frozen=True, slots=True)
class PageData:
    title: str
    meta: dict[str, Any]
    runs: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "meta": self.meta, "runs": self.runs}


def run_json(run: RunRecord, broker: str, start: float | None = None) -> dict[str, Any]:
    """``run`` as the page reads it, entries in the journal's own order; entry times
    count from ``start`` (default: the earliest entry's)."""
    entries = run.entries
    if start is None:
        start = min((float(e.get("time", 0.0)) for e in entries), default=0.0)
    return {
        "name": run.name,
        "title": run.title,
        "description": run.description,
        "status": run.status,
        "entries": [compact_entry(e, broker, start) for e in entries],
        "expectations": [x.to_json() for x in run.expectations],
    }


def page_data(
    title: str, topology: Topology, drawing_order: Iterable[str], runs: list[RunRecord]
) -> PageData:
    meta = topology_meta(topology, drawing_order)
    return PageData(title, meta, [run_json(r, meta["broker"]) for r in runs])
