"""The journal under hostile and heavy input (issue 15, items 3 and 4): bodies nested
deep enough to break a JSON writer are refused with a clear 400 and journaled safely;
big bodies are journaled as size, media type and hash; memory keeps a bounded window
while a file receives the whole run; writing an entry can never fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from ecom_harness.harness.journal import (
    EventEntry,
    Interaction,
    Journal,
    entry_json,
    journal_body,
)
from ecom_harness.harness.mesh import Mesh, MeshOptions

on_the_mesh = pytest.mark.asyncio(loop_scope="module")

REGISTER = "/v1/auth/register"


def nested(depth: int) -> bytes:
    """A JSON body of ``depth`` nested arrays inside the register object's ``name``."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"email": "deep@example.com", "password": "pw-12345678", "name": ' + inner + b"}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    file = tmp_path_factory.mktemp("journal") / "run.jsonl"
    options = MeshOptions(journal_file=file, journal_keep=50)
    async with Mesh(options) as running:
        yield running


@on_the_mesh
@pytest.mark.parametrize("depth", [65, 254, 255, 256, 1000, 1024])
async def test_a_deeply_nested_body_is_a_clear_400_and_is_journaled(mesh: Mesh, depth: int) -> None:
    async with mesh.client() as client:
        answer = await client.post(
            REGISTER, content=nested(depth), headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "deeper than 64 levels" in answer.json()["detail"]
    entry = mesh.journal.interactions("client->api-gateway")[-1]
    assert (entry.operation_id, entry.status) == ("registerUser", 400)
    raw = nested(depth)
    assert entry.request_body == {
        "omitted": "nested deeper than 64 levels",
        "size": len(raw),
        "media_type": "application/json",
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    async with httpx.AsyncClient(base_url=mesh.url("admin")) as admin:
        listed = await admin.get("/admin/journal", params={"since": entry.seq - 1})
    assert listed.status_code == 200, listed.text
    assert [i["seq"] for i in listed.json()["items"]][:1] == [entry.seq]


@on_the_mesh
async def test_a_body_within_the_bound_is_validated_as_usual(mesh: Mesh) -> None:
    async with mesh.client() as client:
        answer = await client.post(
            REGISTER, content=nested(60), headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422  # the gateway's validation failure: name is no string
    assert answer.json()["type"].endswith("/validation-error"), answer.text


@on_the_mesh
async def test_a_big_body_is_journaled_as_its_size_media_type_and_hash(mesh: Mesh) -> None:
    big = orjson.dumps({"email": "big@example.com", "password": "x" * 200_000, "name": "B"})
    async with mesh.client() as client:
        answer = await client.post(
            REGISTER, content=big, headers={"content-type": "application/json"}
        )
    assert answer.status_code in (400, 422), answer.text  # the password is over its maxLength
    entry = mesh.journal.interactions("client->api-gateway")[-1]
    assert entry.request_body["omitted"] == f"over {mesh.journal.body_limit} bytes"
    assert entry.request_body["size"] == len(big)
    assert entry.request_body["sha256"] == hashlib.sha256(big).hexdigest()
    assert "x" * 1000 not in entry_json(entry).decode()


def _interaction(seq: int, body: Any, answer: Any = None) -> Interaction:
    return Interaction(
        seq=seq,
        time=0.0,
        caller="a",
        callee="b",
        operation_id=None,
        method="POST",
        path="/",
        query="",
        request_headers={},
        request_body=body,
        status=200,
        response_headers={},
        response_body=answer,
        duration_ms=1.0,
    )


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_deep(300), "Recursion limit"),
        ({"big": 2**70}, "Integer exceeds 64-bit range"),
        ({"set": {1, 2}}, "not JSON serializable"),
    ],
)
def test_writing_an_entry_never_fails_on_what_it_holds(body: Any, problem: str) -> None:
    written = orjson.loads(entry_json(_interaction(7, body)))
    assert written["seq"] == 7 and written["caller"] == "a"  # the rest is kept
    assert problem in written["request_body"]["unserializable"]


def test_memory_keeps_a_window_and_the_file_the_whole_run(tmp_path: Path) -> None:
    journal = Journal(keep=10)
    file = tmp_path / "j.jsonl"
    journal.stream_to(file)
    for seq in range(1, 101):
        journal.add(_interaction(journal.next_seq(), _deep(300), {"n": seq}))
    assert [e.seq for e in journal.entries()] == list(range(91, 101))
    assert journal.written == 90  # left memory, went to the file at once
    assert journal.close() == 100
    lines = Journal.load(file)
    assert [line["seq"] for line in lines] == list(range(1, 101))
    assert lines[0]["response_body"] == {"n": 1}  # the field that can be written is
    assert "Recursion limit" in lines[0]["request_body"]["unserializable"]


def test_without_a_file_the_window_drops_the_oldest() -> None:
    journal = Journal(keep=3)
    for _ in range(5):
        journal.add(_interaction(journal.next_seq(), None))
    assert [e.seq for e in journal.entries()] == [3, 4, 5]
    assert journal.dropped == 2


def test_an_event_leaving_memory_is_no_longer_indexed_for_deliveries() -> None:
    journal = Journal(keep=1)
    event = EventEntry(1, 0.0, "order-svc", "orders", "k", "order.placed", "evt_1", 0, 0, {})
    journal.add(event)
    journal.add(_interaction(journal.next_seq(), None))
    assert journal.events() == [] and journal.dropped == 1


def test_deliveries_waiting_for_their_record_are_bounded_as_the_entries_are() -> None:
    """With a topic watch, a delivery seen before its record waits for it; one whose
    record's entry already left memory waits for nothing, and such deliveries piled up
    for as long as the mesh ran (issue 15, flat memory). A delivery seen before its
    record is still linked to it."""
    from ecom_harness.stubs import Delivered, Record

    journal = Journal(keep=3)
    journal.watches_topics = True

    def record(offset: int) -> Record:
        value = {"id": f"evt_{offset}", "type": "order.placed"}
        return Record("orders", "k", value, {}, 0, offset, 0)

    for offset in range(100):
        journal.observe_bus(Delivered("notify-svc", record(offset), 1))
    assert len(journal._pending) == 3  # the newest three still wait
    entry = journal.record_event(record(99), "order-svc")
    assert entry.groups == ["notify-svc"]


def test_journal_body_keeps_an_everyday_body_as_data() -> None:
    body = orjson.dumps({"a": [1, {"b": 2}], "password": "s3cret"})
    assert journal_body(body, "application/json") == {"a": [1, {"b": 2}], "password": "[redacted]"}


@on_the_mesh
async def test_the_file_holds_every_exchange_of_the_mesh_when_it_stops(
    tmp_path: Path,
) -> None:
    file = tmp_path / "mesh.jsonl"
    async with Mesh(MeshOptions(journal_file=file, journal_keep=5)) as mesh:
        async with mesh.client() as client:
            for _ in range(12):
                assert (await client.get("/health")).status_code == 200
            hostile = await client.post(
                REGISTER, content=nested(255), headers={"content-type": "application/json"}
            )
            assert hostile.status_code == 400
        assert len(mesh.journal.entries()) == 5
    lines = Journal.load(file)
    assert len(lines) == 13
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert lines[-1]["request_body"]["omitted"] == "nested deeper than 64 levels"


@pytest.mark.parametrize(
    ("raw", "media_type", "kept"),
    [
        (
            b'{"order_id": "ord_1", "items": [{"sku": "A"}]}',
            "application/json",
            {"order_id": "ord_1", "items": [{"sku": "A"}]},
        ),
        (
            b'{"user": {"Access_Token": "t"}}',
            "application/json",
            {"user": {"Access_Token": "[redacted]"}},
        ),
        (b'{"pass\\u0077ord": "p"}', "application/json", {"password": "[redacted]"}),
        (  # the Kelvin sign, written as itself, lowers to k
            '{"api_\u212aey": "k"}'.encode(),
            "application/json",
            {"api_\u212aey": "[redacted]"},
        ),
        (
            b"pass%77ord=p&amount=1",
            "application/x-www-form-urlencoded",
            {"password": "[redacted]", "amount": "1"},
        ),
    ],
)
def test_journal_body_redacts_every_spelling_of_a_secret(
    raw: bytes, media_type: str, kept: Any
) -> None:
    """A JSON body whose text names no secret is kept as decoded (no copy); one that does,
    in any case, escaped or form-encoded, has the secret redacted."""
    assert journal_body(raw, media_type) == kept
