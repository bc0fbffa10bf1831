"""Lint: every check of the spec documents, one module per kind of check.

OpenAPI and AsyncAPI structure, the house conventions, the topology's architecture rules
and the links between documents; :func:`lint_specs` runs them all over a set of files.
May import: ``ecom_harness.specs`` only.

Names load on first use (PEP 562): ``specs lint`` starts its structure worker
(:class:`StructureWorker`) before the checks' modules load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from ._asyncapi import channel_messages, lint_asyncapi
    from ._common import check_refs, check_schema_compiles
    from ._config import (
        HOUSE_RULES,
        KNOWN_RULES,
        LintConfig,
        LintConfigError,
        load_lint_config,
    )
    from ._conventions import (
        SHARED_DEFINITIONS,
        check_engine_answers,
        check_integer_bounds,
        check_shared_definitions,
    )
    from ._document import lint_document
    from ._openapi import lint_openapi
    from ._spec_links import SpecLookup, check_spec_links
    from ._specs import LintReport, lint_specs
    from ._structure import StructureWorker
    from ._topology_rules import check_topology_rules

_EXPORTS = {
    "HOUSE_RULES": "._config",
    "KNOWN_RULES": "._config",
    "LintConfig": "._config",
    "LintConfigError": "._config",
    "LintReport": "._specs",
    "SHARED_DEFINITIONS": "._conventions",
    "SpecLookup": "._spec_links",
    "StructureWorker": "._structure",
    "channel_messages": "._asyncapi",
    "check_engine_answers": "._conventions",
    "check_integer_bounds": "._conventions",
    "check_refs": "._common",
    "check_schema_compiles": "._common",
    "check_shared_definitions": "._conventions",
    "check_spec_links": "._spec_links",
    "check_topology_rules": "._topology_rules",
    "lint_asyncapi": "._asyncapi",
    "lint_document": "._document",
    "lint_openapi": "._openapi",
    "lint_specs": "._specs",
    "load_lint_config": "._config",
}

__all__ = [
    "HOUSE_RULES",
    "KNOWN_RULES",
    "SHARED_DEFINITIONS",
    "LintConfig",
    "LintConfigError",
    "LintReport",
    "SpecLookup",
    "StructureWorker",
    "channel_messages",
    "check_engine_answers",
    "check_integer_bounds",
    "check_refs",
    "check_schema_compiles",
    "check_shared_definitions",
    "check_spec_links",
    "check_topology_rules",
    "lint_asyncapi",
    "lint_document",
    "lint_openapi",
    "lint_specs",
    "load_lint_config",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
