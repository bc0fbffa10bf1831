"""The order saga's vocabulary: a call to a peer, what it came to, why a forward step
failed, and the undo steps that put right what the completed steps did.

Kept apart from :mod:`.order_svc`, which runs the saga, so the rules for what an
outcome means (unknown, declined, nothing left to undo) are read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ecom_harness.stubs.engine import StubResponse

from ._simulator import problem_response

__all__ = [
    "BY_ORDER",
    "FORWARD",
    "Call",
    "Outcome",
    "PeerUnavailable",
    "SagaFailed",
    "UndoStep",
    "compensations",
    "read_answer",
    "settling",
    "unknown",
]

# The saga's forward steps, in order; each completed one is undone by its compensation.
FORWARD = ("reserveStock", "createPayment", "scheduleShipment", "commitReservation")


class PeerUnavailable(Exception):
    """A peer timed out, could not be reached, or answered 5xx (a breaker failure)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP call to a peer, named by the peer's operationId."""

    operation: str
    peer: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call came to: ``status`` is None when no answer arrived (see ``detail``)."""

    ok: bool
    status: int | None
    body: dict[str, Any]
    detail: str
    sent: bool = True  # False: the circuit breaker kept the call from being made


UndoStep = tuple[str, dict[str, Any]]  # kind (the undoing operationId, or settle*), payload
# Undo steps by order id: done when the peer undid what the order had (200) or made sure
# nothing comes of a request still to land (204).
BY_ORDER = frozenset({"releaseOrderReservation", "cancelOrderShipment"})


@dataclass(eq=False)
class SagaFailed(Exception):
    """A forward step failed: why (``reason`` is the order's failure_reason), the
    problem to answer, and ids learnt on the way (a declined charge's payment_id)."""

    reason: str
    status: int
    slug: str
    title: str
    detail: str
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # undoes the step whose outcome is unknown (it timed out): settling, or by order id
    unsettled: UndoStep | None = None

    def response(self, order_id: str) -> StubResponse:
        return problem_response(
            self.status,
            self.slug,
            title=self.title,
            detail=self.detail,
            instance=f"/orders/{order_id}",
            headers={**self.headers, "Location": f"/orders/{order_id}"},
            **self.extensions,
            order_id=order_id,
            order_status="REJECTED",
        )


def compensations(
    order: Mapping[str, Any], done: Sequence[str], refund_reason: str, release_reason: str
) -> list[UndoStep]:
    """The steps undoing the completed forward steps ``done``, latest first; the release
    says why (the order's failure reason), for ``inventory.released``."""
    undo: dict[str, UndoStep] = {
        "reserveStock": (
            "releaseReservation",
            {"reservation_id": order["reservation_id"], "reason": release_reason},
        ),
        "createPayment": (
            "refundPayment",
            {"payment_id": order["payment_id"], "reason": refund_reason},
        ),
        "scheduleShipment": ("cancelShipment", {"shipment_id": order["shipment_id"]}),
    }
    return [undo[step] for step in reversed(done) if step in undo]


def settling(call: Call) -> UndoStep:
    """The undo step of a forward call whose outcome is unknown: send it again as it was
    (the peer treats it as the same request), then undo what it answered."""
    return f"settle:{call.operation}", {
        "path": call.path,
        "json": call.json,
        "headers": dict(call.headers),
    }


def unknown(outcome: Outcome) -> bool:
    """Whether a call's outcome is unknown: no answer, or the peer failed (5xx)."""
    return outcome.sent and (outcome.status is None or outcome.status >= 500)


def read_answer(response: httpx.Response, expect: int) -> Outcome:
    """A peer's answer as an :class:`Outcome` (its JSON object body, or {})."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    if status == expect:
        return Outcome(True, status, body, f"answered {status}")
    return Outcome(False, status, body, f"answered {status}: {body.get('detail', '')}")
