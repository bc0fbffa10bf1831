"""openapi-spec-validator's verdict on the structure of OpenAPI documents, computed here
or in a second process while the rest of lint runs.

Importing that library and walking the documents with it is about half of what
``specs lint`` spends on the shipped specs, and no other check needs either. So the
command starts a :class:`StructureWorker` first thing (one forked process that imports
the validator meanwhile); ``lint_specs`` hands it the structural check of every OpenAPI
document as soon as the documents are read, runs every other check meanwhile, and takes
the verdicts at the end. Nothing here imports the library or the process machinery until
it is used, so the parent process never pays for the validator's import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecom_harness._fork import ForkedWorkers
from ecom_harness.specs._diagnostics import Diagnostic
from ecom_harness.specs._documents import Document

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["Structure", "StructureWorker", "check_structure"]


@dataclass(frozen=True, slots=True)
class Structure:
    """What openapi-spec-validator found wrong with one document's structure."""

    diagnostics: tuple[Diagnostic, ...]
    unresolvable: bool = False
    """It met a ``$ref`` it could not follow (reported only if lint's own check of the
    references passed: otherwise that check has said which)."""


def check_structure(doc: Document) -> Structure:
    """The validator's verdict on ``doc`` (in this process). A validator that fails on
    input nobody foresaw must not hide the rest of the report: that is one more finding."""
    from ._openapi_validator import validate_structure

    try:
        return validate_structure(doc)
    except Exception as exc:  # noqa: BLE001 - the documented last resort, never a traceback
        message = f"could not be checked: {type(exc).__name__}: {exc}"
        return Structure((Diagnostic(doc.display, "", message, "internal"),))


def _prepare() -> None:
    """Import the validator in the worker while the parent reads the documents."""
    from . import _openapi_validator  # noqa: F401


class StructureWorker(ForkedWorkers):
    """Structural verdicts on OpenAPI documents. With ``parallel`` (where the platform can
    fork and there is a second core), one forked worker process imports the validator
    from the moment this is entered, and checks the documents :meth:`hand_over` gives it;
    otherwise, or if the worker fails, :meth:`verdict` checks a document here."""

    def __init__(self, *, parallel: bool):
        super().__init__(_prepare, wanted=parallel)
        self._pending: dict[Path, Future[Structure]] = {}

    def hand_over(self, documents: Iterable[Document]) -> None:
        """Have the worker check ``documents`` (nothing, without a worker or if it died)."""
        if self.pool is None:
            return
        try:
            for doc in documents:
                self._pending[doc.path] = self.pool.submit(check_structure, doc)
        except RuntimeError:  # BrokenProcessPool: the worker died while importing
            self._pending.clear()
            self.lost()

    def verdict(self, doc: Document) -> Structure:
        """The verdict on ``doc``: the worker's (waiting for it), else computed here."""
        pending = self._pending.get(doc.path)
        if pending is not None:
            try:
                return pending.result()
            except Exception:  # noqa: BLE001 - the worker died (killed, out of memory)
                pass  # then checked here: the same verdict, later
        return check_structure(doc)
