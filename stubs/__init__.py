"""Specs in, stubs out: loading and checking spec documents, the stub engine, the
simulators' runtime (state, cache, event bus) and serving.

Everything public is re-exported here; the modules behind it are private. Names load on
first use (PEP 562), so ``specs lint`` does not pay for SQLAlchemy, aiokafka or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from ._convention_lint import check_shared_definitions
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

_EXPORTS = {
    "Backends": "._backends",
    "BusError": "._bus",
    "BusEvent": "._bus",
    "ContractCheck": "._contract",
    "DeadLettered": "._bus",
    "Delivered": "._bus",
    "DeliveryFailed": "._bus",
    "Diagnostic": "._diagnostics",
    "Document": "._documents",
    "DocumentKind": "._documents",
    "EventBus": "._bus",
    "HTTP_METHODS": "._openapi_lint",
    "InMemoryBus": "._bus",
    "KafkaBus": "._bus_kafka",
    "MessageRejected": "._bus",
    "MessageValidator": "._bus",
    "PointerError": "._pointers",
    "Published": "._bus",
    "Record": "._bus",
    "SchemaCompileError": "._schemas",
    "SchemaSet": "._schemas",
    "ServePlan": "._serve",
    "SpecNotFound": "._host",
    "StubHost": "._host",
    "StubRequest": "._http",
    "StubResponse": "._http",
    "TansuBroker": "._tansu",
    "TansuStartError": "._tansu",
    "Violation": "._schemas",
    "channel_messages": "._asyncapi_lint",
    "check_shared_definitions": "._convention_lint",
    "check_exchange": "._contract",
    "collect_files": "._documents",
    "display_path": "._documents",
    "escape_token": "._diagnostics",
    "iter_operations": "._openapi_lint",
    "join_pointer": "._diagnostics",
    "lint_document": "._lint",
    "pointer_from_path": "._diagnostics",
    "read_document": "._documents",
    "resolve_pointer": "._pointers",
    "response_violations": "._contract",
    "serve_stubs": "._serve",
    "shipped_components": "._host",
    "shipped_spec": "._host",
    "spec_root": "._locate",
    "tansu_broker": "._tansu",
    "unescape_token": "._pointers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "check_shared_definitions",
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
