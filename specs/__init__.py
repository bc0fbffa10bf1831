"""The platform's specs and everything that reads them: strict YAML, documents, JSON
pointers, compiled schema sets, diagnostics, the compiled operation and message models,
the topology model and its rendering, and :mod:`.lint`.

The YAML documents ship beside this code as package data. The bottom layer: imports no
other package of ecom-harness. Names load on first use (PEP 562), so a command pays only
for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from ._diagnostics import Diagnostic, escape_token, join_pointer, pointer_from_path
    from ._documents import Document, DocumentKind, collect_files, display_path, read_document
    from ._locate import shipped_documents, spec_root
    from ._messages import (
        DEFAULT_ASYNCAPI,
        MessageRejected,
        MessageValidator,
        UnknownChannel,
        default_validator,
    )
    from ._operations import (
        HTTP_METHODS,
        Api,
        MediaBody,
        Operation,
        Parameter,
        ResponseSpec,
        coercer_for,
        iter_operations,
        resolve_refs,
        schema_type,
    )
    from ._pointers import PointerError, iter_objects, iter_refs, resolve_pointer, unescape_token
    from ._schemas import SchemaCompileError, SchemaSet, Violation
    from ._shipped import SpecNotFound, load_api, shipped_components, shipped_spec
    from ._topology import (
        COMPONENT_KINDS,
        PROTOCOLS,
        Component,
        Edge,
        Topology,
        TopologyError,
        load_topology,
        parse_topology,
    )
    from ._topology_render import TOPOLOGY_FORMATS, render_topology
    from ._yaml import DuplicateKeyError, YamlError, load_yaml
    from .lint import (
        LintConfig,
        LintConfigError,
        LintReport,
        SpecLookup,
        channel_messages,
        check_refs,
        check_schema_compiles,
        check_spec_links,
        check_topology_rules,
        lint_asyncapi,
        lint_document,
        lint_openapi,
        lint_specs,
        load_lint_config,
    )

_EXPORTS = {
    "Api": "._operations",
    "COMPONENT_KINDS": "._topology",
    "Component": "._topology",
    "DEFAULT_ASYNCAPI": "._messages",
    "Diagnostic": "._diagnostics",
    "Document": "._documents",
    "DocumentKind": "._documents",
    "DuplicateKeyError": "._yaml",
    "Edge": "._topology",
    "TOPOLOGY_FORMATS": "._topology_render",
    "HTTP_METHODS": "._operations",
    "LintConfig": ".lint",
    "LintConfigError": ".lint",
    "LintReport": ".lint",
    "load_lint_config": ".lint",
    "MediaBody": "._operations",
    "MessageRejected": "._messages",
    "MessageValidator": "._messages",
    "Operation": "._operations",
    "PROTOCOLS": "._topology",
    "Parameter": "._operations",
    "PointerError": "._pointers",
    "ResponseSpec": "._operations",
    "SchemaCompileError": "._schemas",
    "SchemaSet": "._schemas",
    "SpecLookup": ".lint",
    "SpecNotFound": "._shipped",
    "Topology": "._topology",
    "TopologyError": "._topology",
    "UnknownChannel": "._messages",
    "Violation": "._schemas",
    "YamlError": "._yaml",
    "channel_messages": ".lint",
    "check_refs": ".lint",
    "check_schema_compiles": ".lint",
    "check_spec_links": ".lint",
    "check_topology_rules": ".lint",
    "coercer_for": "._operations",
    "collect_files": "._documents",
    "default_validator": "._messages",
    "display_path": "._documents",
    "escape_token": "._diagnostics",
    "iter_objects": "._pointers",
    "iter_operations": "._operations",
    "iter_refs": "._pointers",
    "join_pointer": "._diagnostics",
    "lint_asyncapi": ".lint",
    "lint_document": ".lint",
    "lint_openapi": ".lint",
    "lint_specs": ".lint",
    "load_api": "._shipped",
    "load_topology": "._topology",
    "load_yaml": "._yaml",
    "parse_topology": "._topology",
    "pointer_from_path": "._diagnostics",
    "read_document": "._documents",
    "render_topology": "._topology_render",
    "resolve_pointer": "._pointers",
    "resolve_refs": "._operations",
    "schema_type": "._operations",
    "shipped_components": "._shipped",
    "shipped_documents": "._locate",
    "shipped_spec": "._shipped",
    "spec_root": "._locate",
    "unescape_token": "._pointers",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "COMPONENT_KINDS",
    "DEFAULT_ASYNCAPI",
    "HTTP_METHODS",
    "PROTOCOLS",
    "TOPOLOGY_FORMATS",
    "Api",
    "Component",
    "Diagnostic",
    "Document",
    "DocumentKind",
    "DuplicateKeyError",
    "Edge",
    "LintConfig",
    "LintConfigError",
    "LintReport",
    "MediaBody",
    "MessageRejected",
    "MessageValidator",
    "Operation",
    "Parameter",
    "PointerError",
    "ResponseSpec",
    "SchemaCompileError",
    "SchemaSet",
    "SpecLookup",
    "SpecNotFound",
    "Topology",
    "TopologyError",
    "UnknownChannel",
    "Violation",
    "YamlError",
    "channel_messages",
    "check_refs",
    "check_schema_compiles",
    "check_spec_links",
    "check_topology_rules",
    "coercer_for",
    "collect_files",
    "default_validator",
    "display_path",
    "escape_token",
    "iter_objects",
    "iter_operations",
    "iter_refs",
    "join_pointer",
    "lint_asyncapi",
    "lint_document",
    "lint_openapi",
    "lint_specs",
    "load_api",
    "load_lint_config",
    "load_topology",
    "load_yaml",
    "parse_topology",
    "pointer_from_path",
    "read_document",
    "render_topology",
    "resolve_pointer",
    "resolve_refs",
    "schema_type",
    "shipped_components",
    "shipped_documents",
    "shipped_spec",
    "spec_root",
    "unescape_token",
]
