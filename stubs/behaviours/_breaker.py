"""A small, generic circuit breaker (closed -> open -> half_open -> closed).

Why: a caller whose dependency keeps timing out should stop waiting on it and fail at
once, then probe it again after a cool-down with a single trial call rather than a
stampede. Time comes from an injected clock (the simulator's ``ctx.clock``), so tests
move time instead of sleeping.

The breaker knows nothing about HTTP: a call *fails* when it raises one of the
exception types given as ``failures``; anything else it raises passes through and
leaves the counts alone.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpen"]

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The call was refused without being made; retry after ``retry_after`` seconds."""

    def __init__(self, state: BreakerState, retry_after: int):
        super().__init__(f"circuit {state.value}; retry after {retry_after} s")
        self.state = state
        self.retry_after = retry_after


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` seconds lets one
    trial call through: its success closes the circuit, its failure re-opens it."""

    def __init__(
        self,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], datetime],
        failures: tuple[type[BaseException], ...] = (Exception,),
    ):
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold, self.cooldown, self.failures = threshold, cooldown, failures
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Back to closed with no failures counted."""
        self.consecutive_failures = 0
        self._failed_at: datetime | None = None  # the last failure counted
        self._opened_at: datetime | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial_running or self._cooled_down():
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def rested(self) -> bool:
        """Closed, and either no failure counted since the last success or the last one
        a cool-down ago: when a caller may send work that is not judged by the breaker
        (background clean-up) without piling it onto a dependency that just failed."""
        if self.state is not BreakerState.CLOSED:
            return False
        if self._failed_at is None:
            return True
        return (self._clock() - self._failed_at).total_seconds() >= self.cooldown

    def retry_after(self) -> int:
        """Whole seconds (at least 1) until a call may be let through again."""
        if self._opened_at is None:
            return 1
        elapsed = (self._clock() - self._opened_at).total_seconds()
        return max(1, math.ceil(self.cooldown - elapsed))

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` if the circuit lets it through, else raise :class:`CircuitOpen`."""
        trial = self._admit()
        try:
            result = await fn()
        except self.failures:
            self._record_failure()
            raise
        except BaseException:
            # Not the dependency's fault (e.g. cancellation): a trial may be tried again.
            if trial:
                self._trial_running = False
            raise
        self._record_success()
        return result

    def _cooled_down(self) -> bool:
        assert self._opened_at is not None
        return (self._clock() - self._opened_at).total_seconds() >= self.cooldown

    def _admit(self) -> bool:
        """True when the call is the half-open trial; raises while open or while a
        trial is already running."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        raise CircuitOpen(state, self.retry_after())

    def _record_failure(self) -> None:
        self.consecutive_failures += 1
        self._failed_at = self._clock()
        if self._trial_running or self.consecutive_failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def _record_success(self) -> None:
        self.reset()
