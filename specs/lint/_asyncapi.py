"""Lint one AsyncAPI 3.0 document.

Structure is checked against the official AsyncAPI 3.0.0 JSON Schema (vendored from
``@asyncapi/specs``; jsonschema-rs decides validity fast and python-jsonschema explains a
failure well). On top: valid actions, operations whose channel and messages resolve and
belong together, payload schemas that are valid JSON Schema, examples that match their
payload, and a sender and a receiver for every message.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

from ecom_harness.specs._diagnostics import join_pointer, pointer_from_path
from ecom_harness.specs._documents import Document
from ecom_harness.specs._format_schema import FormatSchema
from ecom_harness.specs._schemas import SchemaSet

from ._common import check_refs, check_schema_compiles

__all__ = ["channel_messages", "lint_asyncapi"]

ACTIONS = ("send", "receive")


@cache
def _official_schema() -> dict[str, Any]:
    text = resources.files("ecom_harness.specs.lint").joinpath("vendor/asyncapi-3.0.0.schema.json")
    schema: dict[str, Any] = orjson.loads(text.read_bytes())
    return schema


@cache
def _official_format() -> FormatSchema:
    return FormatSchema(_official_schema(), draft7=True)


def lint_asyncapi(doc: Document) -> None:
    """Append every problem of an AsyncAPI document to ``doc.diagnostics``."""
    version = str(doc.data.get("asyncapi", ""))
    if not version.startswith("3."):
        doc.problem(
            "/asyncapi", f"unsupported AsyncAPI version '{version}' (3.0.0)", "asyncapi-version"
        )
        return
    refs_ok = check_refs(doc)
    _check_structure(doc)
    _check_operations(doc)
    if refs_ok:
        _check_payloads(doc, SchemaSet(doc.data))
    _check_senders_and_receivers(doc)


def _check_structure(doc: Document) -> None:
    for shown in _official_format().problems(doc.data):
        doc.problem(
            pointer_from_path(shown.absolute_path), shown.message.splitlines()[0][:300], "asyncapi"
        )


def _mapping(node: Any, key: str) -> dict[str, Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def _list(node: Any, key: str) -> list[Any]:
    """A list field, or nothing (the structural check reports a wrong type)."""
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def channel_messages(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``(channel id, message id) -> pointer`` for every message a channel carries."""
    return {
        (channel_id, message_id): join_pointer("/channels", channel_id, "messages", message_id)
        for channel_id, channel in _mapping(data, "channels").items()
        for message_id in _mapping(channel, "messages")
    }


def _check_operations(doc: Document) -> None:
    for op_id, operation in _mapping(doc.data, "operations").items():
        pointer = join_pointer("/operations", op_id)
        if not isinstance(operation, dict):
            continue  # the structural check reports it
        action = operation.get("action")
        if action not in ACTIONS:
            doc.problem(
                join_pointer(pointer, "action"),
                f"action '{action}' is neither 'send' nor 'receive'",
                "asyncapi-action",
            )
        channel_ref = _mapping(operation, "channel").get("$ref", "")
        prefix = "#/channels/"
        if (
            not isinstance(channel_ref, str)
            or not channel_ref.startswith(prefix)
            or "/" in channel_ref[len(prefix) :]
        ):
            doc.problem(
                join_pointer(pointer, "channel"),
                "channel must be a $ref to '#/channels/<id>'",
                "asyncapi-channel-ref",
            )
            continue
        channel_ref_prefix = channel_ref + "/messages/"
        for index, message in enumerate(_list(operation, "messages")):
            ref = message.get("$ref") if isinstance(message, dict) else None
            if not isinstance(ref, str) or not ref.startswith(channel_ref_prefix):
                doc.problem(
                    join_pointer(pointer, "messages", index),
                    f"message must be a $ref into its channel's messages "
                    f"('{channel_ref_prefix}<id>'), got {ref!r}",
                    "asyncapi-message-ref",
                )


def _message_objects(doc: Document) -> list[tuple[str, dict[str, Any]]]:
    """Message objects where they are defined (not where they are referenced)."""
    found = [
        (join_pointer("/components/messages", name), message)
        for name, message in _mapping(_mapping(doc.data, "components"), "messages").items()
    ]
    found += [
        (join_pointer("/channels", cid, "messages", mid), message)
        for cid, channel in _mapping(doc.data, "channels").items()
        for mid, message in _mapping(channel, "messages").items()
    ]
    return [(p, m) for p, m in found if isinstance(m, dict) and "$ref" not in m]


def _check_payloads(doc: Document, schemas: SchemaSet) -> None:
    for name in _mapping(_mapping(doc.data, "components"), "schemas"):
        check_schema_compiles(doc, schemas, join_pointer("/components/schemas", name))
    for pointer, message in _message_objects(doc):
        slots = [slot for slot in ("payload", "headers") if isinstance(message.get(slot), dict)]
        compiled = {
            slot
            for slot in slots
            if check_schema_compiles(doc, schemas, join_pointer(pointer, slot))
        }
        for index, example in enumerate(_list(message, "examples")):
            if not isinstance(example, dict):
                continue
            for slot in compiled & example.keys():
                for violation in schemas.violations(join_pointer(pointer, slot), example[slot]):
                    doc.problem(
                        join_pointer(pointer, "examples", index, slot) + violation.pointer,
                        f"example breaks its {slot} schema: {violation.message}",
                        "example-invalid",
                    )


def _check_senders_and_receivers(doc: Document) -> None:
    used: dict[str, set[str]] = {}
    for operation in _mapping(doc.data, "operations").values():
        if not isinstance(operation, dict) or operation.get("action") not in ACTIONS:
            continue
        for message in _list(operation, "messages"):
            ref = message.get("$ref") if isinstance(message, dict) else None
            if isinstance(ref, str):
                used.setdefault(ref.lstrip("#"), set()).add(operation["action"])
    for (channel_id, message_id), pointer in channel_messages(doc.data).items():
        actions = used.get(pointer, set())
        for action, role in (("send", "sender"), ("receive", "receiver")):
            if action not in actions:
                doc.problem(
                    pointer,
                    f"message '{message_id}' on channel '{channel_id}' has no "
                    f"{role}: no operation with action '{action}' lists it",
                    "asyncapi-unrouted-message",
                )
