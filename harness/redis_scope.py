"""The Redis keys the harness owns for a real service: a namespace, emptied between scenarios.

A stub forgets its state when a scenario starts (the gateway stub deletes its own
``api-gateway:`` keys); a real service cannot be told to. Its Redis state would then
outlive the scenario: a product cached by happy-path makes cache-hit's first read a HIT
instead of the MISS the scenario expects, and a rerun within the cache's TTL fails the
same way. So ``ecom-harness env`` gives a real service that uses Redis a key namespace,
``REDIS_KEY_PREFIX`` (``ecom-harness:<port-base>:<component>:``), to keep every key of
its under, and the mesh deletes the keys under it when each scenario starts.

Only those keys: the Redis server and database are the user's (``--redis URL``), and
whatever else they hold -- the user's own keys, another run's namespace (another port
base), the stubs' keys -- is never touched. A prefix per port base, not per run, so the
environment a team starts its service with is known before the run (``env``) and stays
right for every run with the same options.
"""

from __future__ import annotations

import re

import redis.asyncio as aioredis

__all__ = ["KEY_PREFIX_VARIABLE", "clear_namespace", "redis_key_prefix"]

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
