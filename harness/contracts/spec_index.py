"""The specs a contract is checked against, found by component name.

An OpenAPI document belongs to the component its ``info.x-component`` names; every
AsyncAPI document is searched for a topic's channel. The index is built from a folder
(the shipped ``specs/``, a temporary copy under test, or a git revision checked out by
``contracts diff``) so the same checks run against any version of the specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecom_harness.specs import (
    Api,
    Diagnostic,
    Document,
    DocumentKind,
    SchemaSet,
    collect_files,
    read_document,
    resolve_pointer,
)

__all__ = ["Channel", "SpecIndex", "SpecIndexError"]


class SpecIndexError(ValueError):
    """The specs cannot be read: the message is one ``FILE#POINTER: message`` line."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One AsyncAPI channel (a Kafka topic): its messages by name, and who sends on it."""

    document: Document
    channel_id: str
    address: str
    messages: dict[str, str]  # message name (the envelope's `type`) -> pointer of the message
    senders: frozenset[str]
    receivers: frozenset[str]

    @property
    def pointer(self) -> str:
        return f"/channels/{self.channel_id}"


class SpecIndex:
    """OpenAPI documents by component, AsyncAPI channels by topic, of one spec folder."""

    def __init__(self, root: Path):
        self.root = root
        self.apis: dict[str, Api] = {}
        self.channels: dict[str, Channel] = {}
        self._async_schemas: dict[Path, SchemaSet] = {}
        for path in collect_files([root]):
            document = read_document(path, display=_display(root, path))
            if isinstance(document, Diagnostic):
                if document.rule == "kind" and root.is_dir():
                    continue  # another file in the folder (a vendored schema), not a spec
                raise SpecIndexError(str(document))
            if document.kind is DocumentKind.OPENAPI:
                api = Api(document)
                self.apis.setdefault(api.component, api)
            elif document.kind is DocumentKind.ASYNCAPI:
                self._add_channels(document)

    def api(self, component: str) -> Api | None:
        return self.apis.get(component)

    def async_schemas(self, document: Document) -> SchemaSet:
        found = self._async_schemas.get(document.path)
        if found is None:
            found = self._async_schemas[document.path] = SchemaSet(document.data)
        return found

    def _add_channels(self, document: Document) -> None:
        data = document.data
        senders: dict[str, set[str]] = {}
        receivers: dict[str, set[str]] = {}
        for operation in _mapping(data, "operations").values():
            if not isinstance(operation, dict):
                continue
            ref = _mapping(operation, "channel").get("$ref", "")
            channel_id = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
            who = operation.get("x-component")
            if isinstance(who, str):
                side = senders if operation.get("action") == "send" else receivers
                side.setdefault(channel_id, set()).add(who)
        for channel_id, channel in _mapping(data, "channels").items():
            if not isinstance(channel, dict):
                continue
            messages = {}
            for message_id, message in _mapping(channel, "messages").items():
                pointer = f"/channels/{channel_id}/messages/{message_id}"
                resolved = _follow(data, message)
                name = resolved.get("name") if isinstance(resolved, dict) else None
                messages[str(name or message_id)] = pointer
            address = str(channel.get("address") or channel_id)
            self.channels.setdefault(
                address,
                Channel(
                    document=document,
                    channel_id=str(channel_id),
                    address=address,
                    messages=messages,
                    senders=frozenset(senders.get(str(channel_id), ())),
                    receivers=frozenset(receivers.get(str(channel_id), ())),
                ),
            )


def payload_pointer(data: dict[str, Any], message_pointer: str) -> str | None:
    """Where the payload schema of a message (at ``message_pointer``) lives."""
    pointer = message_pointer
    for _ in range(16):
        node = resolve_pointer(data, pointer)
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return f"{pointer}/payload" if "payload" in node else None
        pointer = ref.lstrip("#")
    return None


def _follow(data: dict[str, Any], node: Any) -> Any:
    for _ in range(16):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        node = resolve_pointer(data, node["$ref"])
    return node


def _mapping(node: Any, key: str) -> dict[str, Any]:
    found = node.get(key) if isinstance(node, dict) else None
    return found if isinstance(found, dict) else {}


def _display(root: Path, path: Path) -> str:
    """Spec files are named relative to the specs folder, as in ``specs/openapi/x.yaml``."""
    if root.is_file():
        return str(path)
    try:
        return f"{root.name}/{path.relative_to(root).as_posix()}"
    except ValueError:
        return str(path)
