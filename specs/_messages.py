"""The compiled AsyncAPI message model: which topics exist, the message types each
carries, and whether a record keeps the document (validation on publish and observation).

Both buses and the mesh's observer use it, so a record the in-process bus refuses is
refused by the Kafka bus too, and a real service's record is judged by the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._diagnostics import join_pointer
from ._documents import Document, read_document
from ._locate import spec_root
from ._pointers import resolve_pointer
from ._schemas import SchemaSet, Violation

__all__ = [
    "DEFAULT_ASYNCAPI",
    "MessageRejected",
    "MessageValidator",
    "UnknownChannel",
    "default_validator",
    "shared_validator",
]

DEFAULT_ASYNCAPI = Path("asyncapi", "commerce-events.yaml")


class UnknownChannel(LookupError):
    """No channel of the AsyncAPI document has that address (topic)."""


class MessageRejected(ValueError):
    """A record that breaks the AsyncAPI contract; nothing was published.

    ``violations`` point into the record seen as ``{"topic", "key", "value", "headers"}``:
    ``/key``, ``/value/order_id``, ``/value`` (a required member is missing)...
    """

    def __init__(self, topic: str, message_type: str | None, violations: list[Violation]):
        self.topic = topic
        self.message_type = message_type
        self.violations = violations
        what = f"'{message_type}' record" if message_type else "record"
        listed = "; ".join(f"{v.pointer}: {v.message}" for v in violations)
        super().__init__(f"{what} for topic '{topic}' rejected: {listed}")


# --- validation against AsyncAPI -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MessageSpec:
    """Where the schemas of one AsyncAPI message live in the document."""

    payload: str
    key: str | None
    headers: str | None


@dataclass(frozen=True, slots=True)
class _ChannelSpec:
    topic: str
    partitions: int
    messages: dict[str, _MessageSpec]  # by the envelope `type` the payload pins


def _mapping(node: Any, key: str) -> dict[str, Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def _follow(data: dict[str, Any], pointer: str) -> str:
    """The pointer of what ``pointer`` names after following local ``$ref``s."""
    seen = {pointer}
    node = resolve_pointer(data, pointer)
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref: str = node["$ref"]
        if not ref.startswith("#"):
            raise ValueError(f"{pointer}: only local $refs are supported, got '{ref}'")
        pointer = ref[1:]
        if pointer in seen:
            raise ValueError(f"{pointer}: $ref cycle")
        seen.add(pointer)
        node = resolve_pointer(data, pointer)
    return pointer


def _pinned(
    data: dict[str, Any], pointer: str, name: str, seen: frozenset[str] = frozenset()
) -> set[Any]:
    """Every ``const`` the schema at ``pointer`` pins property ``name`` to (through allOf)."""
    pointer = _follow(data, pointer)
    if pointer in seen:
        return set()  # a schema that includes itself adds nothing new
    schema = resolve_pointer(data, pointer)
    found: set[Any] = set()
    if name in _mapping(schema, "properties"):
        prop = resolve_pointer(data, _follow(data, join_pointer(pointer, "properties", name)))
        if isinstance(prop, dict) and "const" in prop:
            found.add(prop["const"])
    branches = schema.get("allOf") if isinstance(schema, dict) else None
    for index in range(len(branches) if isinstance(branches, list) else 0):
        found |= _pinned(data, join_pointer(pointer, "allOf", index), name, seen | {pointer})
    return found


def _message_spec(data: dict[str, Any], pointer: str) -> tuple[str, _MessageSpec]:
    """The envelope type a message pins and where its payload, key and header schemas are."""
    pointer = _follow(data, pointer)
    message = resolve_pointer(data, pointer)
    types = _pinned(data, join_pointer(pointer, "payload"), "type")
    if len(types) != 1 or not isinstance(next(iter(types)), str):
        found = ", ".join(sorted(map(repr, types))) or "none"
        raise ValueError(
            f"{pointer}/payload: the bus routes by the envelope type, so the payload must "
            f"pin 'type' to one string const (found: {found})"
        )
    kafka = _mapping(_mapping(message, "bindings"), "kafka")
    key = join_pointer(pointer, "bindings", "kafka", "key") if "key" in kafka else None
    headers = join_pointer(pointer, "headers") if "headers" in message else None
    return types.pop(), _MessageSpec(join_pointer(pointer, "payload"), key, headers)


def _channel_specs(data: dict[str, Any]) -> Iterator[_ChannelSpec]:
    for channel_id, channel in _mapping(data, "channels").items():
        address = channel.get("address")
        topic = address if isinstance(address, str) else channel_id
        partitions = _mapping(_mapping(channel, "bindings"), "kafka").get("partitions", 1)
        messages: dict[str, _MessageSpec] = {}
        for message_id in _mapping(channel, "messages"):
            where = join_pointer("/channels", channel_id, "messages", message_id)
            kind, spec = _message_spec(data, where)
            if kind in messages:
                raise ValueError(f"{where}: type '{kind}' already used on channel '{channel_id}'")
            messages[kind] = spec
        yield _ChannelSpec(topic, int(partitions), messages)


class MessageValidator:
    """Checks records against an AsyncAPI document before they reach a topic.

    The channel is found by its ``address`` (the topic), the message by the ``type`` const
    its payload pins, so a new message type in the spec needs no code here. Every schema
    is compiled when the validator is built: a broken spec fails at load, not mid-run.
    """

    def __init__(self, document: dict[str, Any]):
        self._schemas = SchemaSet(document)
        self._channels = {spec.topic: spec for spec in _channel_specs(document)}
        for channel in self._channels.values():
            for message in channel.messages.values():
                for pointer in (message.payload, message.key, message.headers):
                    if pointer is not None:
                        self._schemas.validator(pointer)

    @classmethod
    def load(cls, path: Path | None = None) -> MessageValidator:
        """The validator of an AsyncAPI file (the shipped commerce events by default)."""
        found = read_document(path or spec_root() / DEFAULT_ASYNCAPI)
        if not isinstance(found, Document):
            raise ValueError(str(found))
        return cls(found.data)

    @property
    def partitions(self) -> dict[str, int]:
        """Topic -> partition count from the channel's kafka binding (1 without one)."""
        return {topic: spec.partitions for topic, spec in self._channels.items()}

    def message_types(self, topic: str) -> list[str]:
        """The envelope types a topic carries, as the document declares them."""
        return sorted(self._channel(topic).messages)

    def check(self, topic: str, key: str, value: dict[str, Any], headers: Mapping[str, str]) -> str:
        """The message type of a valid record; raises :class:`MessageRejected` listing
        every violation (unknown topic, unknown type, payload, key, headers)."""
        channel = self._channels.get(topic)
        if channel is None:
            known = ", ".join(sorted(self._channels))
            reason = f"no channel has address '{topic}' (known: {known})"
            raise MessageRejected(topic, None, [Violation("/topic", reason)])
        kind = value.get("type") if isinstance(value, dict) else None
        message = channel.messages.get(kind) if isinstance(kind, str) else None
        if message is None:
            known = ", ".join(sorted(channel.messages))
            reason = f"{kind!r} is not a message type of topic '{topic}' (expected: {known})"
            raise MessageRejected(topic, None, [Violation("/value/type", reason)])
        found = self._violations(message, key, value, headers)
        if found:
            raise MessageRejected(topic, kind, found)
        return str(kind)

    def _channel(self, topic: str) -> _ChannelSpec:
        try:
            return self._channels[topic]
        except KeyError:
            raise UnknownChannel(f"no channel has address '{topic}'") from None

    def _violations(
        self, message: _MessageSpec, key: str, value: dict[str, Any], headers: Mapping[str, str]
    ) -> list[Violation]:
        parts: list[tuple[str, str, Any]] = [("/value", message.payload, value)]
        if message.key is not None:
            parts.append(("/key", message.key, key))
        if message.headers is not None:
            parts.append(("/headers", message.headers, dict(headers)))
        return [
            Violation(prefix + violation.pointer, violation.message)
            for prefix, pointer, instance in parts
            for violation in self._schemas.violations(pointer, instance)
        ]


def default_validator() -> MessageValidator:
    """The validator of the shipped AsyncAPI document (:func:`shared_validator`)."""
    return shared_validator(spec_root() / DEFAULT_ASYNCAPI)


def shared_validator(path: Path) -> MessageValidator:
    """The validator of an AsyncAPI file, built once per process while the file is
    unchanged (another modification time or size is read again): read-only once built,
    so a mesh's bus and its journal's topic watch, and meshes side by side, share it."""
    stat = path.stat()
    return _validator_of_unchanged(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _validator_of_unchanged(path: Path, _mtime_ns: int, _size: int) -> MessageValidator:
    return MessageValidator.load(path)
