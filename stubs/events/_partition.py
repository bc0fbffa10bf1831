"""Kafka's default partitioner: where a key goes.

Using the real algorithm means a key lands on the same partition number in memory and on a
broker, so a scenario reads the same either way.
"""

from __future__ import annotations

import struct

__all__ = ["partition_for"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    body = length & ~3
    for (word,) in struct.iter_unpack("<I", data[:body]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = data[body:]
    if tail:
        for index, byte in enumerate(tail):
            h ^= byte << (8 * index)
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``.

    Using the real algorithm means a key lands on the same partition number in memory
    and on a broker, so a scenario reads the same either way.
    """
    return (_murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
