"""The gateway's admission: at most so many requests at work behind it at once.

Under overload every request in flight competes for the same event loop (and, on real
backends, the same database connections). Left unbounded, 64 clients mean 64 sagas
advancing a step per turn of the loop, and everything else the platform does between
requests -- the outbox relays, notify-svc's mails -- waits its turn behind all of them:
with the embedded mesh saturated at 64 clients the confirmation mails came 1.7 s (p50)
to 3.4 s (p95) after the answers (issue 15). Admitting a bounded number and keeping the
rest waiting at the door, where they cost nothing, keeps the work behind the gateway as
short as the machine can serve it: the same throughput, the answers as late as the
queue makes them, and the mails within a few tenths of a second. Envoy's circuit breaker
(``max_requests``, with ``max_pending_requests`` waiting) bounds its upstreams alike.

A request that waits longer than ``queue_timeout`` for its turn is answered 503 with
``Retry-After`` by the gateway; it has done nothing downstream, so a retry is safe.
Waiting requests are admitted in arrival order (asyncio's :class:`~asyncio.Semaphore`
is fair). A changed limit applies to the requests that arrive after the change.

Not a simulator module: it defines no :class:`Simulator` subclass, so discovery skips it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["Admission", "QueueTimeout", "check_admission"]


class QueueTimeout(Exception):
    """A request waited ``queue_timeout`` seconds and was not admitted."""


def check_admission(max_in_flight: object, queue_timeout: object) -> tuple[int, float]:
    """The two settings as numbers; ValueError naming the one that is not usable."""
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 0:
        raise ValueError(
            f"max_in_flight must be a whole number >= 0 (0: no bound), not {max_in_flight!r}"
        )
    if (
        isinstance(queue_timeout, bool)
        or not isinstance(queue_timeout, int | float)
        or not queue_timeout > 0
    ):
        raise ValueError(f"queue_timeout must be a number of seconds > 0, not {queue_timeout!r}")
    return max_in_flight, float(queue_timeout)


class Admission:
    """``async with admission.slot():`` around a request's work; 0 admits everything."""

    def __init__(self, max_in_flight: int, queue_timeout: float):
        self.max_in_flight, self.queue_timeout = check_admission(max_in_flight, queue_timeout)
        self._gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    def configure(self, max_in_flight: int, queue_timeout: float) -> None:
        """New bounds for the requests that arrive from now on (the ones already in or
        waiting keep the gate they came through); ValueError changes nothing."""
        max_in_flight, queue_timeout = check_admission(max_in_flight, queue_timeout)
        if max_in_flight != self.max_in_flight:
            self._gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self.max_in_flight, self.queue_timeout = max_in_flight, queue_timeout

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Admitted for the block; :class:`QueueTimeout` when no slot came in time."""
        gate = self._gate
        if gate is None:
            yield
            return
        if gate.locked():  # a turn to wait for: bounded
            try:
                async with asyncio.timeout(self.queue_timeout):
                    await gate.acquire()
            except TimeoutError:
                raise QueueTimeout(
                    f"{self.max_in_flight} in flight (its bound) and this one waited "
                    f"{self.queue_timeout:g} s for its turn"
                ) from None
        else:  # a free slot: taken without a timer
            await gate.acquire()
        try:
            yield
        finally:
            gate.release()
