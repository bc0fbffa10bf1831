"""The forked workers of ``specs lint`` and ``run`` (``ecom_harness._fork``): none where
forking is unsafe, and none left behind by a parent that dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from ecom_harness._fork import forked_worker

KILLED_PARENT = textwrap.dedent(
    """
    import os, time
    from ecom_harness._fork import forked_worker
    pool = forked_worker(processes=2)
    pool.submit(time.sleep, 0).result()
    print(" ".join(str(pid) for pid in pool._processes), flush=True)
    os.kill(os.getpid(), 9)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_leave_with_a_parent_that_was_killed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_PARENT],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    workers = [int(pid) for pid in done.stdout.split()]
    assert len(workers) == 2, done.stderr
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def test_no_fork_while_another_thread_runs() -> None:
    """A lock another thread holds at the fork would stay held in the worker for ever:
    the caller does the work itself instead."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert forked_worker() is None
    finally:
        release.set()
        other.join()
