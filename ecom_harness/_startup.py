"""The cyclic garbage collector while a command starts.

A command imports about a thousand modules before it does any work (a run: SQLAlchemy,
httpx, fakeredis, the stubs) -- some 170,000 objects that live as long as the process.
With the collector's usual settings, Python runs collections over that growing heap all
through the imports and every later full collection walks it again: together about a
tenth of ``ecom-harness run all``. So the entry point defers collection
(:func:`defer_collection`), and once the imports are done (:func:`imports_done`, when a
server starts serving: a mesh, a stub, the player) everything alive so far moves to the
permanent generation (``gc.freeze``), never scanned again, and the usual settings return
for what the long-running process allocates from then on.

Deferred is not off: a batch command (lint, a generator), which never calls
:func:`imports_done`, still collects, after every million new objects instead of every
700. Outside the entry point (tests, the library used from Python) neither function
changes anything.
"""

from __future__ import annotations

import gc

__all__ = ["defer_collection", "imports_done"]

_DEFERRED_THRESHOLD = 1_000_000  # young objects before a collection while starting
_usual: list[tuple[int, ...]] = []  # the settings to return to, while deferred


def defer_collection() -> None:
    """Collect rarely until :func:`imports_done` (the console-script entry point)."""
    if not _usual:
        _usual.append(gc.get_threshold())
        gc.set_threshold(_DEFERRED_THRESHOLD, *_usual[0][1:])


def imports_done() -> None:
    """The command's modules are loaded: freeze what is alive, collect as usual again.
    Does nothing unless :func:`defer_collection` deferred collection."""
    if _usual:
        gc.freeze()
        gc.set_threshold(*_usual.pop())
