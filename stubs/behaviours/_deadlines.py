"""How long each caller waits for each callee: every timeout of the platform, in one place.

A caller that gives up before its callee has finished leaves the callee's work in an
unknown state (a charge that lands after the order was rejected, a reservation nobody
releases). So the timeouts nest: each caller waits longer than the most its callee can
take, all of its own calls and their retries included. Only the leaves are set here
(one Stripe call, one inventory or shipping call); every other timeout is worked out from
them, so changing a leaf keeps the whole chain nested.

The leaves, in seconds (and counts):

=========================  =======  =====================================================
field                      default  meaning
=========================  =======  =====================================================
``stripe``                 2.0      payment-svc waits for one Stripe call
``stripe_settle_attempts`` 2        further calls with the same Idempotency-Key after a
                                    timed-out one, to settle its outcome before answering
``inventory``              2.0      order-svc waits for one inventory-svc call (a timeout
                                    counts towards the circuit breaker)
``shipping``               2.0      order-svc waits for one shipping-svc call
``internal``               2.0      any other internal call (gateway -> user-svc, ...)
``margin``                 0.5      what each level adds for its own work
``keepalive``              2.0      seconds a client keeps an idle pooled connection
                                    (shorter than the servers' :data:`SERVER_KEEPALIVE`)
=========================  =======  =====================================================

Worked out from them: :attr:`Deadlines.payment` (what createPayment may take),
:attr:`Deadlines.order` (what createOrder may take: every forward step and every
compensation, each at its own timeout) and :meth:`Deadlines.edge`, the timeout of a
``caller -> callee`` edge. ``ecom-harness env`` shows a component the timeouts of its
own edges and the time its own callers wait for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SERVER_KEEPALIVE", "DeadlineError", "Deadlines"]

SERVER_KEEPALIVE = 30.0  # seconds a served connection may idle (uvicorn's default is 5)


# A component's own settings may set a leaf for one run (a scenario's ``inventory_timeout``).
_LEAF_SETTINGS = {
    "inventory_timeout": "inventory",
    "shipping_timeout": "shipping",
    "stripe_timeout": "stripe",
}


class DeadlineError(ValueError):
    """A deadline value that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class Deadlines:
    stripe: float = 2.0
    stripe_settle_attempts: int = 2
    inventory: float = 2.0
    shipping: float = 2.0
    internal: float = 2.0
    margin: float = 0.5
    keepalive: float = 2.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise DeadlineError(f"deadline '{item.name}' must be a number >= 0, not {value!r}")
        if self.keepalive >= SERVER_KEEPALIVE:
            raise DeadlineError(
                f"deadline 'keepalive' ({self.keepalive:g} s) must be shorter than the "
                f"servers' idle timeout ({SERVER_KEEPALIVE:g} s)"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Deadlines:
        """From ``{"stripe": 0.2, ...}`` (a settings file, the admin API); unknown names
        are refused with the known ones."""
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DeadlineError(
                f"unknown deadline(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**values)

    def for_component(self, settings: Mapping[str, Any]) -> Deadlines:
        """These deadlines with the leaves a component's settings set for one run
        (``inventory_timeout``, ``shipping_timeout``, ``stripe_timeout``): a scenario makes a
        timeout short so it runs fast. Only leaves: what a caller waits is still worked
        out from them, so the chain still nests."""
        changes: dict[str, Any] = {
            leaf: float(settings[name]) for name, leaf in _LEAF_SETTINGS.items() if name in settings
        }
        return dataclasses.replace(self, **changes) if changes else self

    def as_dict(self) -> dict[str, float]:
        return {item.name: float(getattr(self, item.name)) for item in dataclasses.fields(self)}

    # --- worked out from the leaves ---

    @property
    def payment(self) -> float:
        """The most payment-svc's createPayment (or refundPayment) takes: the first
        Stripe call and every settling retry, each at the Stripe timeout."""
        return self.stripe * (1 + self.stripe_settle_attempts) + self.margin

    @property
    def order(self) -> float:
        """The most order-svc's createOrder takes: reserve, charge, schedule and commit,
        then (when the last one fails) cancel, refund and release, each at its edge's
        timeout (a compensation that does not finish is retried later, not waited for)."""
        forward = self.inventory + self.edge("order-svc", "payment-svc") + self.shipping
        forward += self.inventory
        undo = self.shipping + self.edge("order-svc", "payment-svc") + self.inventory
        return forward + undo + self.margin

    @property
    def gateway(self) -> float:
        """The most the gateway's placeOrder takes: introspection, the catalog reads (in
        parallel) and createOrder; what a client should wait at least."""
        return 2 * self.internal + self.edge("api-gateway", "order-svc") + self.margin

    def edge(self, caller: str, callee: str) -> float:
        """How long ``caller`` waits for one call to ``callee``."""
        fixed = {
            ("payment-svc", "stripe"): self.stripe,
            ("order-svc", "inventory-svc"): self.inventory,
            ("order-svc", "shipping-svc"): self.shipping,
        }
        if (caller, callee) in fixed:
            return fixed[caller, callee]
        if (caller, callee) == ("order-svc", "payment-svc"):
            return self.payment + self.margin
        if (caller, callee) == ("api-gateway", "order-svc"):
            return self.order + self.margin
        if callee == "api-gateway":
            return self.gateway + self.margin
        return self.internal
