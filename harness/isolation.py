"""Keeping scenarios apart when a service is real: it keeps its state, and may act late.

A stub forgets its state when a scenario starts; a real service cannot be told to. Two
things of it would otherwise reach the next scenario:

**Its Redis keys.** A product cached by happy-path makes cache-hit's first read a HIT
instead of the MISS the scenario expects (and a rerun within the cache's TTL fails the
same way). So ``ecom-harness env`` gives a real service that uses Redis a key namespace,
``REDIS_KEY_PREFIX`` (``ecom-harness:<port-base>:<component>:``), to keep every key of
its under, and the mesh deletes the keys under it when each scenario starts
(:func:`clear_namespace`). Only those: the Redis server and database are the user's
(``--redis URL``), and whatever else they hold -- the user's own keys, another run's
namespace (another port base), the stubs' keys -- is never touched. A prefix per port
base, not per run, so the environment a team starts its service with is known before
the run (``env``) and stays right for every run with the same options.

**What it does late.** An outbox relayed after the scenario ended, a consumer that lags:
an event or call of an earlier scenario lands in the next one's journal. Every record is
keyed by its order (the AsyncAPI key binding), so the journal remembers the keys an
earlier scenario named -- its events' keys, and the strings of its exchanges shaped like
one (:func:`key_shape`) -- and the player leaves the entries naming them out of the next
scenario's judgement (``Journal.retire``, ``journal.late_entries``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

__all__ = ["KEY_PREFIX_VARIABLE", "clear_namespace", "key_shape", "redis_key_prefix"]

KEY_PREFIX_VARIABLE = "REDIS_KEY_PREFIX"
_BATCH = 500  # keys per SCAN round and per UNLINK


def redis_key_prefix(port_base: int, component: str) -> str:
    """``ecom-harness:20000:api-gateway:``: where a real ``component`` keeps its keys."""
    return f"ecom-harness:{port_base}:{component}:"


def _glob_escaped(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern (Redis globs: ``* ? [ ] \\``)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


async def clear_namespace(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` in the database at ``url``; the count deleted."""
    if not prefix:
        raise ValueError("an empty prefix would be the whole database")
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=_glob_escaped(prefix) + "*", count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


def key_shape(asyncapi: Mapping[str, Any]) -> Callable[[str], bool]:
    """Whether a string is shaped like a record key: it matches the ``pattern`` of some
    message's Kafka key binding (``^ord_[A-Za-z0-9]{8,32}$``: the order id). No pattern
    in the document (or none Python can compile): nothing is."""
    messages = list(((asyncapi.get("components") or {}).get("messages") or {}).values())
    for channel in (asyncapi.get("channels") or {}).values():
        if isinstance(channel, dict):
            messages += list((channel.get("messages") or {}).values())
    patterns = set()
    for message in messages:
        if not isinstance(message, dict):
            continue
        key = ((message.get("bindings") or {}).get("kafka") or {}).get("key") or {}
        if isinstance(key, dict) and isinstance(key.get("pattern"), str):
            patterns.add(key["pattern"])
    compiled = []
    for pattern in sorted(patterns):
        with contextlib.suppress(re.error):  # an ECMA pattern Python cannot read
            compiled.append(re.compile(pattern))

    def key_like(text: str) -> bool:
        return any(p.search(text) for p in compiled)

    return key_like
