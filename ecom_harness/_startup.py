"""The cyclic garbage collector while a command starts.

A command imports about a thousand modules before it does any work (a run: SQLAlchemy,
httpx, fakeredis, the stubs) -- some 170,000 objects that live as long as the process.
With the collector's usual settings, Python runs collections over that growing heap all
through the imports and every later full collection walks it again: together about a
tenth of ``ecom-harness run all``. So the entry point defers collection
(:func:`defer_collection`), and once the imports are done (:func:`imports_done`, when a
server starts serving: a mesh, a stub, the player) everything alive so far moves to the
permanent generation (``gc.freeze``), never scanned again, and the serving process
collects its young objects every :data:`SERVING_THRESHOLD` allocations, not every 700:
a request allocates thousands of short-lived objects, almost none of them in cycles, and
at 700 the collector was 6-7% of a loaded mesh's CPU, its longest pause 135 ms; at
10,000, 1.2% and 43-56 ms, with the same memory (issue 15, ``bench/bench_orders.py``
on PostgreSQL). The older generations keep their usual settings.

Deferred is not off: a batch command (lint, a generator), which never calls
:func:`imports_done`, still collects, after every million new objects instead of every
700. Outside the entry point (tests, the library used from Python) neither function
changes anything.
"""

from __future__ import annotations

import gc

__all__ = ["SERVING_THRESHOLD", "defer_collection", "imports_done"]

_DEFERRED_THRESHOLD = 1_000_000  # young objects before a collection while starting
SERVING_THRESHOLD = 10_000  # ... once serving (see the module's doc)
_usual: list[tuple[int, ...]] = []  # the settings to return to, while deferred


def defer_collection() -> None:
    """Collect rarely until :func:`imports_done` (the console-script entry point)."""
    if not _usual:
        _usual.append(gc.get_threshold())
        gc.set_threshold(_DEFERRED_THRESHOLD, *_usual[0][1:])


def imports_done() -> None:
    """The command's modules are loaded: freeze what is alive, collect as a server
    should from now on. Does nothing unless :func:`defer_collection` deferred
    collection."""
    if _usual:
        gc.freeze()
        gc.set_threshold(SERVING_THRESHOLD, *_usual.pop()[1:])
