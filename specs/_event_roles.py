"""Who sends and who receives each topic, read from the AsyncAPI document's operations
(``action`` with ``x-component``): the journal attributes a record to its sender, the
mesh watches real consumers' groups, and scenario lint checks ``consumed_by``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["receiver_groups", "senders_by_topic"]


def _operations(
    asyncapi: Mapping[str, Any], action: str
) -> Iterator[tuple[dict[str, Any], str, object]]:
    """(operation, topic, its ``x-component``) for each operation with ``action`` whose
    channel reference resolves; the topic is the channel's address, else its key."""
    channels = asyncapi.get("channels") or {}
    for operation in (asyncapi.get("operations") or {}).values():
        if not isinstance(operation, dict) or operation.get("action") != action:
            continue
        ref = (operation.get("channel") or {}).get("$ref", "")
        key = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
        channel = channels.get(key)
        if isinstance(channel, dict):
            yield operation, str(channel.get("address") or key), operation.get("x-component")


def senders_by_topic(asyncapi: Mapping[str, Any]) -> dict[str, str]:
    """topic -> the one component whose ``send`` operation uses its channel (topics
    with no sender, or several, are left out: the envelope's source decides there)."""
    found: dict[str, set[str]] = {}
    for _operation, topic, component in _operations(asyncapi, "send"):
        if isinstance(component, str):
            found.setdefault(topic, set()).add(component)
    return {topic: next(iter(names)) for topic, names in found.items() if len(names) == 1}


def receiver_groups(asyncapi: Mapping[str, Any], components: Iterable[str]) -> dict[str, set[str]]:
    """group id -> topics, for the ``receive`` operations of ``components``: the group is
    the operation's Kafka binding ``groupId`` (its one ``enum`` value or ``const``), else
    the component's name."""
    wanted = set(components)
    found: dict[str, set[str]] = {}
    for operation, topic, component in _operations(asyncapi, "receive"):
        if component not in wanted:
            continue
        binding = ((operation.get("bindings") or {}).get("kafka") or {}).get("groupId") or {}
        named = binding.get("const") or (binding.get("enum") or [None])[0] or component
        found.setdefault(str(named), set()).add(topic)
    return found
