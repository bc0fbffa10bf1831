"""Specs in, stubs out: loading and checking spec documents, and (later) the stub engine.

Everything public is re-exported here; the modules behind it are private.
"""

from ._asyncapi_lint import channel_messages
from ._backends import Backends
from ._bus import (
    BusError,
    BusEvent,
    DeadLettered,
    Delivered,
    DeliveryFailed,
    EventBus,
    InMemoryBus,
    MessageRejected,
    MessageValidator,
    Published,
    Record,
)
from ._bus_kafka import KafkaBus
from ._contract import ContractCheck, check_exchange, response_violations
from ._diagnostics import Diagnostic, escape_token, join_pointer, pointer_from_path
from ._documents import Document, DocumentKind, collect_files, display_path, read_document
from ._host import SpecNotFound, StubHost, shipped_components, shipped_spec
from ._http import StubRequest, StubResponse
from ._lint import lint_document
from ._locate import spec_root
from ._openapi_lint import HTTP_METHODS, iter_operations
from ._pointers import PointerError, resolve_pointer, unescape_token
from ._schemas import SchemaCompileError, SchemaSet, Violation
from ._serve import ServePlan, serve_stubs
from ._tansu import TansuBroker, TansuStartError, tansu_broker

__all__ = [
    "HTTP_METHODS",
    "Backends",
    "BusError",
    "BusEvent",
    "ContractCheck",
    "DeadLettered",
    "Delivered",
    "DeliveryFailed",
    "Diagnostic",
    "Document",
    "DocumentKind",
    "EventBus",
    "InMemoryBus",
    "KafkaBus",
    "MessageRejected",
    "MessageValidator",
    "PointerError",
    "Published",
    "Record",
    "SchemaCompileError",
    "SchemaSet",
    "ServePlan",
    "SpecNotFound",
    "StubHost",
    "StubRequest",
    "StubResponse",
    "TansuBroker",
    "TansuStartError",
    "Violation",
    "channel_messages",
    "check_exchange",
    "collect_files",
    "display_path",
    "escape_token",
    "iter_operations",
    "join_pointer",
    "lint_document",
    "pointer_from_path",
    "read_document",
    "resolve_pointer",
    "response_violations",
    "serve_stubs",
    "shipped_components",
    "shipped_spec",
    "spec_root",
    "tansu_broker",
    "unescape_token",
]
