"""Specs in, stubs out: loading and checking spec documents, and (later) the stub engine.

Everything public is re-exported here; the modules behind it are private.
"""

from ._asyncapi_lint import channel_messages
from ._diagnostics import Diagnostic, escape_token, join_pointer, pointer_from_path
from ._documents import Document, DocumentKind, collect_files, display_path, read_document
from ._lint import lint_document
from ._locate import spec_root
from ._openapi_lint import HTTP_METHODS, iter_operations
from ._pointers import PointerError, resolve_pointer
from ._schemas import SchemaCompileError, SchemaSet, Violation

__all__ = [
    "HTTP_METHODS",
    "Diagnostic",
    "Document",
    "DocumentKind",
    "PointerError",
    "SchemaCompileError",
    "SchemaSet",
    "Violation",
    "channel_messages",
    "collect_files",
    "display_path",
    "escape_token",
    "iter_operations",
    "join_pointer",
    "lint_document",
    "pointer_from_path",
    "read_document",
    "resolve_pointer",
    "spec_root",
]
