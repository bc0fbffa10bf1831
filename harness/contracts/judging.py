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
from typing import TYPE_CHECKING, Any

from ecom_harness._fork import ForkedWorkers

from .pacts import PactFile

if TYPE_CHECKING:  # pact-python loads where journals are judged: in the workers
    from .scenario_check import PactMismatch

__all__ = ["JudgedAhead", "PactJudge", "PactJudging", "judge_in_thread"]

PactJudging = Callable[[list[dict[str, Any]], list[PactFile]], Awaitable[list["PactMismatch"]]]
"""A journal (JSON-ready entries) and the pacts -> every interaction that breaks one."""


def _prepare() -> None:
    """Load Pact's engine (its shared library) and the replay client in the worker, ahead
    of the first journal, while the meshes start."""
    import pact_ffi

    from .scenario_check import replay_client

    pact_ffi.version()
    replay_client()


def _judge(journal: list[dict[str, Any]], pacts: list[PactFile]) -> list[PactMismatch]:
    from .scenario_check import judge_journal

    return judge_journal(journal, pacts)


async def judge_in_thread(
    journal: list[dict[str, Any]], pacts: list[PactFile]
) -> list[PactMismatch]:
    """Judge in a thread of this process (a scenario played outside a run: the player UI)."""
    return await asyncio.to_thread(_judge, journal, pacts)


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
                        loop.run_in_executor(self.pool, _judge, journal, share)
                        for share in shares
                        if share
                    )
                )
                return [m for found in judged for m in found]
            except BrokenProcessPool:  # killed, out of memory: judge here from now on
                self.lost()
        return await judge_in_thread(journal, pacts)


class JudgedAhead:
    """One scenario's journal judged in parts. While the scenario waits (a ``wait`` step:
    the circuit breaker's cool-down), its HTTP exchanges journaled so far are judged (an
    exchange never changes once journaled), so that at the end only the rest is: the
    later exchanges, and the events, whose deliveries are linked to them as they happen.
    The same verdict as judging the whole journal at the end, sooner. (Judging after
    every step was tried: the judging then took the CPU the next steps needed, and the
    circuit breaker's last orders took twice as long.)"""

    def __init__(self, judge: PactJudging, pacts: list[PactFile]):
        self._judge, self._pacts = judge, pacts
        self._judged: set[int] = set()  # seqs of the exchanges judged ahead
        self._parts: list[asyncio.Future[list[PactMismatch]]] = []

    def judged(self, seq: int) -> bool:
        """Whether the exchange ``seq`` is judged already (no need to hand it again)."""
        return seq in self._judged

    def ahead(self, journal: list[dict[str, Any]]) -> None:
        """Start judging the HTTP exchanges of ``journal`` (JSON-ready) not judged yet."""
        part = [e for e in journal if e["kind"] == "http" and e["seq"] not in self._judged]
        if part:
            self._judged.update(e["seq"] for e in part)
            self._parts.append(asyncio.ensure_future(self._judge(part, self._pacts)))

    async def finish(self, journal: list[dict[str, Any]]) -> list[PactMismatch]:
        """Every mismatch of the whole ``journal``: what was not judged ahead is judged
        now, beside the parts judged ahead."""
        rest = [e for e in journal if e["kind"] != "http" or e["seq"] not in self._judged]
        found = await self._judge(rest, self._pacts)
        for part in self._parts:
            found += await part
        return found

    def cancel(self) -> None:
        """The scenario ended without its verdict (a set-up error): stop what is left;
        what a finished part raised is dropped with it (the set-up error is reported)."""
        for part in self._parts:
            if not part.cancel() and not part.cancelled():
                part.exception()
