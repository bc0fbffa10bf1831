"""The garbage collector of a command's process (ecom_harness._startup): deferred while
the command loads its modules, then, once it serves, what was loaded is frozen and young
objects are collected every ``SERVING_THRESHOLD`` allocations. Each check runs in a
process of its own: the collector's settings are the process's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ecom_harness._startup import SERVING_THRESHOLD

SERVING = textwrap.dedent(
    """
    import gc, weakref
    from ecom_harness._startup import defer_collection, imports_done

    usual = gc.get_threshold()
    defer_collection()
    assert gc.get_threshold()[0] > 100_000, gc.get_threshold()
    loaded = [object() for _ in range(1000)]  # what a command loads while it starts
    imports_done()
    assert gc.get_freeze_count() >= len(loaded), gc.get_freeze_count()
    assert gc.get_threshold() == (SERVING, *usual[1:]), gc.get_threshold()

    class Node:
        pass

    first = Node(); first.me = first  # garbage in a cycle: only the collector frees it
    gone = weakref.ref(first)
    del first
    kept = [[] for _ in range(SERVING // 2)]  # fewer new objects than the threshold
    assert gone() is not None, "collected before the threshold"
    kept += [[] for _ in range(SERVING)]
    assert gone() is None, "not collected after the threshold"
    print("ok")
    """
)


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )


def test_a_serving_process_freezes_its_start_and_collects_every_threshold() -> None:
    script = f"SERVING = {SERVING_THRESHOLD}\n" + SERVING
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_without_the_entry_point_nothing_changes() -> None:
    """A library user's process (tests, a program importing the harness) keeps its own
    settings: only the console script defers collection."""
    script = (
        "import gc; from ecom_harness._startup import imports_done\n"
        "before = gc.get_threshold(); imports_done()\n"
        "assert gc.get_threshold() == before and gc.get_freeze_count() == 0\n"
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr
