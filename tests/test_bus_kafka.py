"""The local Tansu broker: started on loopback, stopped by its handle, topics from the spec.

The bus behaviour on Kafka is tested in ``test_bus.py`` (the same tests as in memory);
these are about the broker process and topic creation.
"""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from ecom_harness.specs import default_validator
from ecom_harness.stubs import TansuStartError, create_topics, tansu_broker


def _fake_binary(tmp_path: Path, script: str) -> str:
    path = tmp_path / "tansu"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_broker_that_dies_at_start_reports_its_output(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path, 'echo "cannot bind: $3"; exit 3')
    with pytest.raises(TansuStartError) as failed, tansu_broker(binary=binary):
        pytest.fail("the broker should not have started")
    assert "status 3" in str(failed.value)
    assert "cannot bind: tcp://127.0.0.1:" in str(failed.value)


def test_a_broker_that_never_listens_is_given_up_on_and_stopped(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path, 'echo "starting"; exec sleep 30')
    with (
        pytest.raises(TansuStartError, match="did not listen") as failed,
        tansu_broker(binary=binary, startup_timeout=0.5),
    ):
        pytest.fail("the broker should not have started")
    assert "starting" in str(failed.value)


def test_the_broker_listens_on_loopback_until_the_block_ends() -> None:
    with tansu_broker() as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) == broker.port
        socket.create_connection((host, broker.port), timeout=1).close()
        assert broker.process.poll() is None
    assert broker.process.returncode is not None
    with pytest.raises(OSError):
        socket.create_connection((host, broker.port), timeout=1).close()


async def _partitions(bootstrap_servers: str, topics: list[str]) -> dict[str, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        return {topic: len(await producer.partitions_for(topic)) for topic in topics}
    finally:
        await producer.stop()


def test_topics_are_created_once_with_the_spec_partitions() -> None:
    wanted = default_validator().partitions
    with tansu_broker() as broker:
        asyncio.run(create_topics(broker.bootstrap_servers, wanted))
        asyncio.run(create_topics(broker.bootstrap_servers, wanted))  # already there: fine
        found = asyncio.run(_partitions(broker.bootstrap_servers, sorted(wanted)))
    assert found == wanted
