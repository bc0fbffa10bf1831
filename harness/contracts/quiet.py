"""Pact's verifier writes its report straight to file descriptor 1 (and its message relay
logs each request to stderr); the contract commands report through their own reporters,
so both are sent to /dev/null while it runs. Pact's anonymous usage tracking (a network
call per verification, which only times out on a machine without Internet) is off."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr

__all__ = ["quiet_stdout"]

_LOCK = threading.Lock()
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")


@contextmanager
def quiet_stdout() -> Iterator[None]:
    with _LOCK:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            with open(os.devnull, "w") as sink, redirect_stderr(sink):
                yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
