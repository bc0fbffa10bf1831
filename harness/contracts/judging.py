"""Where a scenario's journal is judged against the pacts.

Pact's engine (mock servers, the verifier) and the servers that replay the journal to it
take about a third of a run's CPU, in work that needs nothing but the journal and the
pacts. A run hands that work to worker processes, forked when the run starts (before
the mesh starts any thread), so the meshes keep this process's core; the worker imports
Pact's engine while the meshes start. With one core, or if the worker dies, the journal
is judged in a thread of this process instead: the same verdict, later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ecom_harness._fork import ForkedWorkers

from .pacts import PactFile
from .scenario_check import PactMismatch, judge_journal

__all__ = ["PactJudge", "PactJudging", "judge_in_thread"]

PactJudging = Callable[[list[dict[str, Any]], list[PactFile]], Awaitable[list[PactMismatch]]]
"""A journal (JSON-ready entries) and the pacts -> every interaction that breaks one."""


def _prepare() -> None:
    """Load Pact's engine in the worker (its shared library), ahead of the first journal."""
    import pact_ffi

    pact_ffi.version()


async def judge_in_thread(
    journal: list[dict[str, Any]], pacts: list[PactFile]
) -> list[PactMismatch]:
    """Judge in a thread of this process (a scenario played outside a run: the player UI)."""
    return await asyncio.to_thread(judge_journal, journal, pacts)


class PactJudge(ForkedWorkers):
    """Judges journals in forked workers from :meth:`__enter__` on (see the module)."""

    WORKERS = 2  # one per core of the machines this runs on; judging also waits a lot

    def __init__(self) -> None:
        super().__init__(_prepare, processes=self.WORKERS)

    async def __call__(
        self, journal: list[dict[str, Any]], pacts: list[PactFile]
    ) -> list[PactMismatch]:
        """The journal's mismatches; the pacts split between the workers, so one journal
        judged alone (the last scenario's, which the run waits for) takes both."""
        if self.pool is not None:
            loop = asyncio.get_running_loop()
            shares = [pacts[i :: self.WORKERS] for i in range(self.WORKERS)]
            try:
                judged = await asyncio.gather(
                    *(
                        loop.run_in_executor(self.pool, judge_journal, journal, share)
                        for share in shares
                        if share
                    )
                )
                return [m for found in judged for m in found]
            except BrokenProcessPool:  # killed, out of memory: judge here from now on
                self.lost()
        return await judge_in_thread(journal, pacts)
