"""What a load run did to each order, tallied from the journal as it is written, and the
invariants of the platform checked against it.

A listener on the journal (:meth:`OrderLedger.listen`) sees every entry once, the
moment it is recorded, and keeps only a few counters per order: so a run of any length
is checked however little of the journal is kept in memory. Everything comes from the
wire, as the proxies saw it (never from a simulator's internals), so a real service in
a stub's place is held to the same invariants:

* every order order-svc answered ``CONFIRMED`` (to the gateway: the client may have
  given up waiting, and would retry with its ``Idempotency-Key``) was charged exactly
  once (distinct Stripe PaymentIntents that succeeded, less those refunded) and every
  other order keeps no charge;
* every confirmed order gets exactly one confirmation email (SendGrid ``sendMail``
  with the ``order-confirmed`` category), and no other order gets one;
* stock is conserved (:func:`stock_conserved`: what left the shelf is what the
  confirmed orders bought, and nothing stays reserved).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .journal import Entry, Interaction, Journal

__all__ = ["OrderLedger", "OrderTally", "stock_conserved"]

CLIENT_EDGE = "client->api-gateway"
ORDER_EDGE = "api-gateway->order-svc"
STRIPE_EDGE = "payment-svc->stripe"
SENDGRID_EDGE = "notify-svc->sendgrid"
CONFIRMATION_CATEGORY = "order-confirmed"


@dataclass(slots=True)
class OrderTally:
    """One order as the wire saw it."""

    status: str | None = None  # the order's status in order-svc's 201, else None
    answered_at: float | None = None  # when the client got its answer (epoch seconds)
    charged: set[str] = field(default_factory=set)  # PaymentIntent ids that succeeded
    refunded: set[str] = field(default_factory=set)  # PaymentIntent ids refunded
    emails: list[float] = field(default_factory=list)  # when each confirmation was sent

    @property
    def kept_charges(self) -> int:
        return len(self.charged - self.refunded)


class OrderLedger:
    """Per-order tallies of a run; ``listen(journal)`` before the run starts."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderTally] = {}
        self.rejected = 0  # orders refused with a problem (declined card, out of stock...)
        self.failed = 0  # neither 201 nor a refusal: the gateway gave up (a 5xx)
        self._lock = threading.Lock()
        self._reads: dict[str, Callable[[Interaction], None]] = {
            CLIENT_EDGE: self._client,
            ORDER_EDGE: self._saga,
            STRIPE_EDGE: self._stripe,
            SENDGRID_EDGE: self._sendgrid,
        }

    def listen(self, journal: Journal) -> Callable[[], None]:
        """Tally every entry ``journal`` records from now on; returns the way to stop."""
        journal.listeners.append(self.see)
        return lambda: journal.listeners.remove(self.see)

    def see(self, entry: Entry) -> None:
        if not isinstance(entry, Interaction) or entry.status is None:
            return
        read = self._reads.get(entry.edge)
        if read is not None:
            with self._lock:
                read(entry)

    def _order(self, order_id: str) -> OrderTally:
        return self.orders.setdefault(order_id, OrderTally())

    def _client(self, entry: Interaction) -> None:
        if entry.operation_id != "placeOrder":
            return
        body = entry.response_body if isinstance(entry.response_body, dict) else {}
        if entry.status == 201 and "order_id" in body:
            self._order(str(body["order_id"])).answered_at = entry.time
        elif entry.status in (402, 409):
            self.rejected += 1
        else:
            self.failed += 1

    def _saga(self, entry: Interaction) -> None:
        body = entry.response_body if isinstance(entry.response_body, dict) else {}
        if entry.operation_id == "createOrder" and entry.status == 201 and "order_id" in body:
            self._order(str(body["order_id"])).status = str(body.get("status"))

    def _stripe(self, entry: Interaction) -> None:
        body = entry.response_body if isinstance(entry.response_body, dict) else {}
        order_id = (body.get("metadata") or {}).get("order_id")
        if order_id is None or entry.status != 200:
            return
        if entry.operation_id == "createPaymentIntent" and body.get("status") == "succeeded":
            self._order(str(order_id)).charged.add(str(body["id"]))
        elif entry.operation_id == "createRefund" and body.get("status") == "succeeded":
            self._order(str(order_id)).refunded.add(str(body.get("payment_intent")))

    def _sendgrid(self, entry: Interaction) -> None:
        body = entry.request_body if isinstance(entry.request_body, dict) else {}
        if entry.status != 202 or CONFIRMATION_CATEGORY not in (body.get("categories") or []):
            return
        order_id = (body.get("custom_args") or {}).get("order_id")
        if order_id is not None:
            self._order(str(order_id)).emails.append(entry.time)

    # --- reading it ---

    def snapshot(self) -> dict[str, OrderTally]:
        with self._lock:
            return {
                k: OrderTally(v.status, v.answered_at, set(v.charged), set(v.refunded), [*v.emails])
                for k, v in self.orders.items()
            }

    def confirmed(self) -> list[str]:
        return [k for k, v in self.snapshot().items() if v.status == "CONFIRMED"]

    def emails_settled(self) -> bool:
        """Whether every confirmed order has had its confirmation email."""
        return all(v.emails for v in self.snapshot().values() if v.status == "CONFIRMED")

    def violations(self) -> list[str]:
        """Each broken invariant, one line per order (empty: all hold)."""
        found = []
        for order_id, tally in sorted(self.snapshot().items()):
            confirmed = tally.status == "CONFIRMED"
            want = 1 if confirmed else 0
            what = "confirmed" if confirmed else f"not confirmed ({tally.status})"
            if tally.kept_charges != want:
                found.append(f"{order_id}: {what} but {tally.kept_charges} charge(s) kept")
            if len(tally.emails) != want:
                found.append(f"{order_id}: {what} but {len(tally.emails)} confirmation email(s)")
        return found

    def email_delays(self) -> list[float]:
        """Seconds from the client's answer to the confirmation email, per confirmed order
        that has both."""
        return [
            v.emails[0] - v.answered_at
            for v in self.snapshot().values()
            if v.status == "CONFIRMED" and v.emails and v.answered_at is not None
        ]


def stock_conserved(
    before: Mapping[str, int], after: Mapping[str, Any], bought: Mapping[str, int]
) -> list[str]:
    """Stock invariants: ``before`` on hand per SKU, ``after`` inventory-svc's
    ``getStock`` bodies per SKU, ``bought`` units per SKU in confirmed orders."""
    found = []
    for sku, on_hand in before.items():
        now = after[sku]
        if on_hand - now["on_hand"] != bought.get(sku, 0):
            found.append(
                f"{sku}: {on_hand} -> {now['on_hand']} on hand, "
                f"but confirmed orders bought {bought.get(sku, 0)}"
            )
        if now.get("reserved", 0):
            found.append(f"{sku}: {now['reserved']} unit(s) still reserved")
    return found
