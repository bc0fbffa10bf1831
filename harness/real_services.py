"""Real services the harness starts itself: a team's own command, run with the environment
``ecom-harness env`` prints for its component, waited for on its port, and stopped by
its own handle afterwards. So a CI job needs one command, not a script.

The command is split like a shell would (``shlex``) but not run by one; it runs in a
session of its own, so stopping it stops what it started too (its process group:
SIGTERM, then SIGKILL after a grace period). Its output goes to the harness's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .env import ComponentEnv

__all__ = ["RealService", "RealServiceError", "wait_until_answering"]

STOP_GRACE_S = 5.0


class RealServiceError(RuntimeError):
    """The service could not be started or never answered on its port."""


@dataclass
class RealService:
    """One real component: ``command`` started with ``env`` and expected on ``port``."""

    component: str
    command: str
    env: ComponentEnv
    host: str = "127.0.0.1"
    startup_timeout: float = 30.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.env.variables["PORT"])

    async def start(self) -> None:
        """Start the command and return once its port accepts connections."""
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:
            raise RealServiceError(f"--real-cmd {self.component}: {exc}") from None
        if not argv:
            raise RealServiceError(f"--real-cmd {self.component}: the command is empty")
        environment = {**os.environ, **self.env.variables}
        try:
            self.process = subprocess.Popen(
                argv, env=environment, start_new_session=True, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise RealServiceError(
                f"--real-cmd {self.component}: cannot start {argv[0]!r}: {exc.strerror or exc}"
            ) from None
        await self._wait_for_port()

    async def _wait_for_port(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                raise RealServiceError(
                    f"{self.component} ({self.command!r}) exited with status {code} "
                    f"before answering on port {self.port}"
                )
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise RealServiceError(
                        f"{self.component} ({self.command!r}) did not answer on "
                        f"{self.host}:{self.port} within {self.startup_timeout:g} s"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    async def stop(self) -> None:
        """SIGTERM to the service's process group, SIGKILL after a grace period."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            await asyncio.to_thread(process.wait)


async def wait_until_answering(component: str, url: str, timeout: float) -> None:
    """Return once ``url``'s host and port accept connections (a ``--real NAME=URL``
    the user started); :class:`RealServiceError` naming it after ``timeout`` seconds."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    while True:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise RealServiceError(
                    f"--real {component}={url}: nothing answers on {host}:{port} "
                    f"(waited {timeout:g} s)"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, sig)  # its own session: the group id is its pid
