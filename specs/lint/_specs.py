"""``specs lint``: every document on its own, then the topology against the specs.

Documents are read once and keyed by resolved path, so a spec named on the command line
and by the topology is checked once; specs the topology names but the command line did
not are read too, because the topology cannot be judged without them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecom_harness.specs._diagnostics import Diagnostic
from ecom_harness.specs._documents import Document, DocumentKind, collect_files, read_document
from ecom_harness.specs._locate import shipped_documents
from ecom_harness.specs._topology import parse_topology

from ._config import LintConfig
from ._conventions import check_shared_definitions
from ._document import lint_document
from ._openapi import add_structure, supported_openapi
from ._spec_links import SpecLookup, check_spec_links
from ._structure import StructureWorker
from ._topology_rules import check_topology_rules

__all__ = ["LintReport", "lint_specs"]

_TOPOLOGY = DocumentKind.TOPOLOGY


@dataclass(frozen=True, slots=True)
class LintReport:
    """What a lint run found: every diagnostic (each with its severity; rules set to off
    are left out), and how many files it read. Only errors make it fail."""

    diagnostics: tuple[Diagnostic, ...]
    files: int
    documents: Mapping[Path, Document] = field(default_factory=dict, compare=False, repr=False)
    """The documents read, by resolved path (for a later stage, such as scenario lint)."""

    @property
    def errors(self) -> int:
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warn" for d in self.diagnostics)

    @property
    def ok(self) -> bool:
        return not self.errors


def lint_specs(
    paths: Iterable[Path] = (),
    config: LintConfig | None = None,
    *,
    structure: StructureWorker | None = None,
) -> LintReport:
    """Lint the given files and directories (default: the specs shipped with the package),
    each rule as loud as ``config`` says (default: every rule an error, the house
    conventions for the platform's own specs only). ``structure``: a started worker to
    hand the OpenAPI documents' structural check to (``specs lint`` starts one before
    anything else, see :mod:`._structure`); without one, each is checked here."""
    config = config or LintConfig()
    targets = list(paths) or shipped_documents()
    found: list[Diagnostic] = []
    documents: SpecLookup = {}
    worker = structure or StructureWorker(parallel=False)
    for path in collect_files(targets):
        _read_into(path, documents, found)
    topologies = [(d, parse_topology(d)) for d in documents.values() if d.kind is _TOPOLOGY]
    for model in (t for _doc, t in topologies if t is not None):
        for component in model.components.values():
            spec_path = model.spec_path(component)
            if spec_path is not None:  # a missing one is reported against the topology
                _read_into(spec_path, documents, found, missing_ok=True)
    specs = [d for d in documents.values() if d.kind is not _TOPOLOGY]
    structured = [d for d in specs if d.kind is DocumentKind.OPENAPI and supported_openapi(d)]
    worker.hand_over(structured)
    for topology_doc, topology in topologies:
        if topology is not None and check_topology_rules(topology_doc, topology):
            check_spec_links(topology_doc, topology, documents)
    for doc in specs:
        lint_document(doc, structure=False)
    for doc in structured:
        add_structure(doc, worker.verdict(doc))
    check_shared_definitions(specs)
    own = {doc.display: _is_own(doc) for doc in documents.values()}
    for doc in documents.values():
        found.extend(doc.diagnostics)
    judged = []
    for diagnostic in dict.fromkeys(found):
        severity = config.severity(diagnostic.rule, own=own.get(diagnostic.file, True))
        if severity != "off":
            judged.append(dataclasses.replace(diagnostic, severity=severity))
    return LintReport(diagnostics=tuple(judged), files=len(documents), documents=documents)


def _is_own(doc: Document) -> bool:
    """One of the platform's specs: it names its component (``info.x-component``, or an
    ``x-component`` on its AsyncAPI operations), or it is a topology (only this
    platform's topology format is read)."""
    if doc.kind is DocumentKind.TOPOLOGY:
        return True
    data = doc.data if isinstance(doc.data, dict) else {}
    info = data.get("info")
    if isinstance(info, dict) and "x-component" in info:
        return True
    operations = data.get("operations") if doc.kind is DocumentKind.ASYNCAPI else None
    return isinstance(operations, dict) and any(
        isinstance(op, dict) and "x-component" in op for op in operations.values()
    )


def _read_into(
    path: Path, documents: SpecLookup, found: list[Diagnostic], *, missing_ok: bool = False
) -> None:
    key = path.resolve()
    if key in documents or (missing_ok and not path.exists()):
        return
    result = read_document(path)
    if isinstance(result, Document):
        documents[key] = result
    else:
        found.append(result)
