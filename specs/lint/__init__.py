"""Lint: every check of the spec documents, one module per kind of check.

OpenAPI and AsyncAPI structure, the house conventions, the topology's architecture rules
and the links between documents; :func:`lint_specs` runs them all over a set of files.
May import: ``ecom_harness.specs`` only.
"""

from __future__ import annotations

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
from ._topology_rules import check_topology_rules

__all__ = [
    "HOUSE_RULES",
    "KNOWN_RULES",
    "SHARED_DEFINITIONS",
    "LintConfig",
    "LintConfigError",
    "LintReport",
    "SpecLookup",
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
