"""A second process for CPU work that can run beside this one.

The commands are single Python processes on a machine that usually has more than one
core: work that needs nothing but its inputs (openapi-spec-validator's walk in
``specs lint``, Pact's judging of a scenario's journal in ``run``) can go to a worker
forked from this process. Forking, not spawning: the worker starts with every module
already imported, so it costs milliseconds, not a second interpreter's imports.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

__all__ = ["ForkedWorkers", "forked_worker"]


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def forked_worker(
    prepare: Callable[[], None] | None = None, processes: int = 1
) -> ProcessPoolExecutor | None:
    """Worker ``processes`` forked now, or None where that gains nothing or is unsafe:
    one core; no ``fork`` (a spawned worker would import everything again); or threads
    running here, native ones included (a lock one of them holds at the fork would stay
    held in the worker for ever; a process that had run Pact's engine crashed).
    ``prepare`` runs in each worker first (imports the work needs, started while this
    process goes on). The caller shuts the workers down."""
    import multiprocessing  # loaded with the first worker, not with this module
    from concurrent.futures import ProcessPoolExecutor

    if _cores() < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if _threads() > 1:
        return None
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_leave_with,
        initargs=(os.getpid(),),
    )
    for _ in range(processes):  # a fork context starts every process on the first submit
        pool.submit(prepare or _nothing)
    return pool


def _threads() -> int:
    """Threads of this process, native ones included (Pact's engine runs its own, which
    the threading module never sees) where the system says; else the Python ones."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _nothing() -> None:
    return None


def _leave_with(parent: int) -> None:
    """In each worker: exit when ``parent`` is gone. A parent that shuts its pool down
    ends the workers itself; one killed, or one that exits without, would otherwise
    leave them waiting for work for ever (the worker holds its queue's other end)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


class ForkedWorkers:
    """Workers forked on entering (where :func:`forked_worker` forks any, and ``wanted``),
    shut down on leaving. :attr:`pool` is None without them, or once :meth:`lost` says
    they died: then the owner does the work itself, as it would have anyway."""

    def __init__(self, prepare: Callable[[], None], processes: int = 1, *, wanted: bool = True):
        self._prepare, self._processes, self._wanted = prepare, processes, wanted
        self._started: ProcessPoolExecutor | None = None
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Self:
        if self._wanted:
            self._started = self.pool = forked_worker(self._prepare, self._processes)
        return self

    def lost(self) -> None:
        """The workers died (killed, out of memory): none from now on."""
        self.pool = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started is not None:
            self._started.shutdown(wait=True, cancel_futures=True)
