"""Running the harness in the foreground until the user stops it (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["STOP_SIGNALS", "run_until_signalled"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_until_signalled(main: Callable[[threading.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(requested)`` on an event loop in a worker thread until it returns;
    SIGINT and SIGTERM set ``requested``, and ``main`` decides what stopping means.

    Why a thread: the mesh's uvicorn server installs its own loop signal handlers when it
    runs in the main thread (there is one handler per signal), and none elsewhere. Off the
    main thread, this command alone owns Ctrl-C: the first one stops everything exactly
    once, another one while stopping changes nothing, and none is lost during start-up.
    """
    requested = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(main(requested))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="ecom-harness-mesh")
    previous = {sig: signal.signal(sig, lambda *_: requested.set()) for sig in STOP_SIGNALS}
    try:
        worker.start()
        worker.join()  # signal handlers run in here, between lock waits
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise failure[0]
