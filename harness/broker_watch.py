"""Whether the Kafka broker is there, said once per change, and a local one restarted.

Without this, a broker that died showed only as aiokafka's own reconnect errors (tens
of thousands of lines a minute) while everything else still looked healthy. The watch
probes the broker's address twice a second; each change of state is one log line (``up``
shows it; the admin API reports ``state``). For the
broker the mesh started itself (``--kafka local``), a broker that is gone is started
again on the same address, with backoff, and the bus reconnects to it
(:meth:`KafkaBus.reconnect`, which also sends again what the lost broker had not yet
delivered). While the broker is down, aiokafka's repeated complaints are held back to
one line per distinct message a minute (:class:`OncePerInterval`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["BrokerWatch", "OncePerInterval"]

logger = logging.getLogger("ecom_harness.broker")

UP, DOWN = "up", "down"
MAX_BACKOFF = 10.0


class OncePerInterval(logging.Filter):
    """Lets each distinct message (logger + format string) through once per interval,
    and none while ``quiet()`` says so (the broker is known to be down: the watch has
    said it once)."""

    def __init__(self, interval: float = 60.0, quiet: Callable[[], bool] = lambda: False):
        super().__init__()
        self.interval, self.quiet = interval, quiet
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.quiet():
            return False
        key, now = (record.name, str(record.msg)), time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True


class BrokerWatch:
    """Watches ``address`` (``HOST:PORT``); ``restart`` brings a lost broker back."""

    def __init__(
        self,
        address: str,
        *,
        restart: Callable[[], Awaitable[None]] | None = None,
        interval: float = 0.5,
    ):
        self.address, self.interval = address, interval
        self.state = UP
        self.restarts = 0
        self._restart = restart
        self._task: asyncio.Task[None] | None = None
        self._quiet = OncePerInterval(quiet=lambda: self.state == DOWN)

    def _aiokafka_loggers(self) -> list[logging.Logger]:
        """aiokafka logs through one logger per module; a filter on a parent does not
        see what its children log, so each gets it."""
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "aiokafka"]
        return [logging.getLogger(name) for name in ["aiokafka", *names]]

    def start(self) -> None:
        for found in self._aiokafka_loggers():
            found.addFilter(self._quiet)
        self._task = asyncio.create_task(self._watch(), name=f"broker-watch-{self.address}")

    async def stop(self) -> None:
        for found in self._aiokafka_loggers():
            found.removeFilter(self._quiet)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def reachable(self) -> bool:
        host, _, port = self.address.split(",")[0].rpartition(":")
        try:
            async with asyncio.timeout(1.0):
                _, writer = await asyncio.open_connection(host, int(port))
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _become(self, state: str, detail: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        logger.warning("kafka broker %s is %s%s", self.address, state, detail)

    async def _watch(self) -> None:
        backoff = self.interval
        while True:
            if await self.reachable():
                self._become(UP)
                backoff = self.interval
                await asyncio.sleep(self.interval)
                continue
            self._become(DOWN, "; restarting it" if self._restart else "")
            if self._restart is not None:
                try:
                    await self._restart()
                except Exception as exc:  # noqa: BLE001 - reported, then tried again later
                    logger.warning("kafka broker %s: restart failed: %s", self.address, exc)
                else:
                    self.restarts += 1
                    continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
