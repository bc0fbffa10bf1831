"""Faults injected on a topology edge: what the edge's proxy does instead of (or before)
forwarding a request.

======================  =====================================================
``delay``               wait ``delay_ms`` milliseconds, then forward
``timeout``             never answer (the caller's own timeout decides)
``error``               answer ``status`` with ``body`` without forwarding
``reset``               drop the connection without a complete answer
======================  =====================================================

Any fault can be limited to the next ``times`` requests, after which the edge recovers
("fail 3 times, then recover"). Faults are set from a scenario or the admin API and
cleared between scenarios.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FAULT_KINDS", "Fault", "FaultBook", "FaultError"]

FaultKind = Literal["delay", "timeout", "error", "reset"]
FAULT_KINDS: tuple[FaultKind, ...] = ("delay", "timeout", "error", "reset")


class FaultError(ValueError):
    """A fault description that cannot be used; the message says which field."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    delay_ms: float = 0.0
    status: int = 503
    body: Any = None
    times: int | None = None  # None: until cleared

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build from the admin API's / a scenario's JSON form, checking every field."""
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        delay = data.get("delay_ms", 0)
        if not isinstance(delay, int | float) or delay < 0:
            raise FaultError(f"delay_ms must be a number >= 0, not {delay!r}")
        status = data.get("status", 503)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise FaultError(f"status must be an HTTP status code, not {status!r}")
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultError(f"times must be a whole number >= 1, not {times!r}")
        if kind == "delay" and not delay:
            raise FaultError("a delay fault needs delay_ms > 0")
        return cls(kind, float(delay), status, data.get("body"), times)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind}
        if self.kind == "delay":
            found["delay_ms"] = self.delay_ms
        if self.kind == "error":
            found["status"] = self.status
            if self.body is not None:
                found["body"] = self.body
        if self.times is not None:
            found["times"] = self.times
        return found

    def describe(self) -> str:
        detail = {"delay": f" {self.delay_ms:g} ms", "error": f" {self.status}"}.get(self.kind, "")
        return self.kind + detail


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None
    fired: int = 0


@dataclass
class FaultBook:
    """The faults in force, by edge (``"caller->callee"``); thread-safe."""

    _armed: dict[str, _Armed] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, edge: str, fault: Fault) -> None:
        with self._lock:
            self._armed[edge] = _Armed(fault, fault.times)

    def clear(self, edge: str | None = None) -> None:
        with self._lock:
            if edge is None:
                self._armed.clear()
            else:
                self._armed.pop(edge, None)

    def take(self, edge: str) -> Fault | None:
        """The fault to apply to this request on ``edge``, counting it; None to forward."""
        with self._lock:
            armed = self._armed.get(edge)
            if armed is None:
                return None
            if armed.remaining is not None:
                if armed.remaining <= 0:
                    del self._armed[edge]  # recovered
                    return None
                armed.remaining -= 1
            armed.fired += 1
            return armed.fault

    def active(self) -> dict[str, dict[str, Any]]:
        """Edge -> fault (and how often it fired), for the admin API."""
        with self._lock:
            return {
                edge: armed.fault.to_dict() | {"fired": armed.fired}
                for edge, armed in self._armed.items()
            }
