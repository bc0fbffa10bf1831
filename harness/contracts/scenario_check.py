"""Scenarios are contract checks: every journaled interaction on an edge with a pact must
match an interaction of that pact, judged by Pact's own engine.

- The consumer's side: each journaled request is replayed to pact-python's mock server
  for the edge's pact; a request no interaction describes fails with the mock server's
  mismatch (a missing header, a body field of another type...).
- The provider's side: the answers the provider gave are replayed to pact-python's
  ``Verifier`` for the interactions they belong to (a small server answers each pact
  request with the journaled answer); a mismatch fails with the verifier's description.
- Events: each journaled event on a topic with a message pact is handed to the
  verifier as the provider's message for its type.

So ``run --real order-svc=URL`` checks order-svc as a consumer (what it sends to
inventory, payment, shipping) and as a provider (what it answers the gateway, what it
publishes).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from pact import Pact, Verifier
from pact.error import MissingRequest

from .pacts import PactFile, PactInteraction, body_content, header_value
from .quiet import quiet_stdout

__all__ = ["PactMismatch", "judge_journal", "replay_client"]

_TRANSPORT = frozenset({"host", "content-length", "connection", "accept-encoding", "user-agent"})


@dataclass(frozen=True, slots=True)
class PactMismatch:
    """One journaled interaction (``seq``) that its edge's pact does not describe."""

    edge: str
    pact: str
    seq: int
    side: str  # "consumer" (the request), "provider" (the answer or the event)
    message: str


def _rebuild(pact: PactFile, interactions: list[PactInteraction]) -> Pact:
    """A pact-python Pact holding these HTTP interactions of a pact file, as written."""
    rebuilt = Pact(pact.consumer, pact.provider).with_specification("V4")
    for item in interactions:
        request, response = item.request, item.response
        interaction = rebuilt.upon_receiving(item.description)
        interaction.with_request(str(request.get("method", "GET")), str(request.get("path", "/")))
        for name, values in (request.get("query") or {}).items():
            for value in values if isinstance(values, list) else [values]:
                interaction.with_query_parameter(name, value)
        for name, values in (request.get("headers") or {}).items():
            if name.lower() != "content-type":
                interaction.with_header(
                    name, ", ".join(values) if isinstance(values, list) else values
                )
        present, content, content_type = body_content(request.get("body"))
        if present:
            raw = content if isinstance(content, str) else json.dumps(content)
            interaction.with_body(raw, content_type=content_type, part="Request")
        if request.get("matchingRules"):
            interaction.with_matching_rules(request["matchingRules"], "Request")
        interaction.will_respond_with(int(response.get("status", 200)))
        present, content, content_type = body_content(response.get("body"))
        if present:
            raw = content if isinstance(content, str) else json.dumps(content)
            interaction.with_body(raw, content_type=content_type, part="Response")
    return rebuilt


def _request_parts(entry: dict[str, Any]) -> tuple[dict[str, str], bytes | None]:
    headers = {
        k: v for k, v in (entry.get("request_headers") or {}).items() if k.lower() not in _TRANSPORT
    }
    body = entry.get("request_body")
    if body is None:
        return headers, None
    kind = (header_value(headers, "content-type") or "application/json").split(";")[0]
    if kind == "application/x-www-form-urlencoded" and isinstance(body, dict):
        return headers, urlencode({k: str(v) for k, v in body.items()}).encode()
    if isinstance(body, str):
        return headers, body.encode()
    return headers, orjson.dumps(body)


@functools.cache
def replay_client() -> httpx.Client:
    """The client that replays journaled requests to Pact's mock servers, one per process
    (its threads share it): building a client loads the CA bundle, about 30 ms, on every
    pact judged otherwise, for plain HTTP on loopback."""
    return httpx.Client(timeout=10)


def _consumer_side(pact: PactFile, entries: list[dict[str, Any]]) -> list[PactMismatch]:
    """The requests the consumer sent, matched by pact-python's mock server."""
    http = [i for i in pact.interactions if i.kind == "http"]
    found: list[PactMismatch] = []
    with _rebuild(pact, http).serve(addr="127.0.0.1", raises=False, verbose=False) as server:
        seq_of: dict[tuple[str, str], int] = {}
        base = str(server.url).rstrip("/")
        for entry in entries:
            headers, content = _request_parts(entry)
            path = entry["path"] + (f"?{entry['query']}" if entry.get("query") else "")
            seq_of.setdefault((entry["method"], entry["path"]), int(entry["seq"]))
            replay_client().request(entry["method"], base + path, headers=headers, content=content)
        for mismatch in server.mismatches:
            if isinstance(mismatch, MissingRequest):
                continue  # a scenario need not use every interaction
            where = (getattr(mismatch, "method", ""), getattr(mismatch, "path", ""))
            found.append(
                PactMismatch(
                    pact.edge,
                    pact.path.name,
                    seq_of.get(where, 0),
                    "consumer",
                    " ".join(str(mismatch).split()),
                )
            )
    return found


def _path_matches(item: PactInteraction, path: str) -> bool:
    rules = (item.request.get("matchingRules") or {}).get("path") or {}
    for matcher in rules.get("matchers") or []:
        if matcher.get("match") == "regex":
            return re.fullmatch(str(matcher["regex"]).strip("^$"), path) is not None
    return str(item.request.get("path")) == path


MESSAGE_PATH = "/_pact/message"  # where Pact's verifier asks a message transport


class _Replay(BaseHTTPRequestHandler):
    """Answers each pact request with the journaled answer of its interaction, and each
    message the verifier asks for (by its interaction's description) with the journaled
    event: Pact's message protocol, served here rather than by pact-python's
    ``message_handler``, whose relay server takes half a second to shut down (its
    ``serve_forever`` polls every 0.5 s) on every verification."""

    answers: dict[tuple[str, str], dict[str, Any]]
    messages: dict[str, dict[str, Any]]  # description -> contents (bytes), metadata

    def _answer(self) -> None:
        if self.command == "POST" and self.path == MESSAGE_PATH:
            self._message()
            return
        entry = self.answers.get((self.command, self.path.split("?")[0]))
        if entry is None:
            self.send_response(404)
            self.end_headers()
            return
        body = entry.get("response_body")
        raw = (
            b""
            if body is None
            else orjson.dumps(body)
            if not isinstance(body, str)
            else body.encode()
        )
        self.send_response(int(entry["status"]))
        for name, value in (entry.get("response_headers") or {}).items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _message(self) -> None:
        asked = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        message = self.messages.get(str(asked.get("description")))
        if message is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        contents: bytes = message["contents"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header(
            "Pact-Message-Metadata", base64.b64encode(orjson.dumps(message["metadata"])).decode()
        )
        self.send_header("Content-Length", str(len(contents)))
        self.end_headers()
        self.wfile.write(contents)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def _replaying(
    answers: dict[tuple[str, str], dict[str, Any]], messages: dict[str, dict[str, Any]]
) -> Iterator[int]:
    """A replay server on a free loopback port (yielded) until the block ends."""
    handler = type("Replay", (_Replay,), {"answers": answers, "messages": messages})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(  # shutdown waits for the next poll: poll often
        target=server.serve_forever,
        kwargs={"poll_interval": 0.005},
        name="pact-replay",
        daemon=True,
    )
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def _unredacted(entry: dict[str, Any], item: PactInteraction) -> dict[str, Any]:
    """The journal redacts secrets (a token answered); what was redacted cannot be judged,
    so it is given the pact's own example there."""
    _, example, _ = body_content(item.response.get("body"))

    def walk(value: Any, sample: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: walk(v, sample.get(k) if isinstance(sample, dict) else None)
                for k, v in value.items()
            }
        if isinstance(value, list):
            first = sample[0] if isinstance(sample, list) and sample else None
            return [walk(v, first) for v in value]
        return sample if value == "[redacted]" and sample is not None else value

    return dict(entry, response_body=walk(entry.get("response_body"), example))


def _provider_side(
    pact: PactFile, entries: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[PactMismatch]:
    """The provider's answers (and events), each verified by pact-python's ``Verifier``
    against the interactions of the pact its request (or type) could be: it passes when
    one of them is satisfied (which one depends on the provider's state, which the
    journal does not say)."""
    found: list[PactMismatch] = []
    pairs: list[dict[str, Any]] = []
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    messages: dict[str, dict[str, Any]] = {}
    candidates_of: dict[int, list[str]] = {}
    for entry in entries:
        seq = int(entry["seq"])
        candidates = [
            i
            for i in pact.interactions
            if i.kind == "http"
            and str(i.request.get("method", "GET")).upper() == entry["method"]
            and _path_matches(i, entry["path"])
            and int(i.response.get("status", 0)) == int(entry["status"])
        ]
        if not candidates:
            found.append(
                PactMismatch(
                    pact.edge,
                    pact.path.name,
                    seq,
                    "provider",
                    f"no interaction of the pact answers {entry['method']} {entry['path']} "
                    f"with {entry['status']}",
                )
            )
            continue
        for item in candidates:
            name = f"#{seq}|{item.description}"  # "#12|x" never ends with "#2|x"
            candidates_of.setdefault(seq, []).append(name)
            raw = {k: v for k, v in item.raw.items() if k not in ("providerStates", "request")}
            raw["description"] = name
            raw["request"] = {"method": "GET", "path": f"/judge/{seq}"}
            answers[("GET", f"/judge/{seq}")] = _unredacted(entry, item)
            pairs.append(raw)
    for event in events:
        seq = int(event["seq"])
        candidates = [
            i
            for i in pact.interactions
            if i.kind == "message" and _message_type(i) == event.get("message_type")
        ]
        for item in candidates:
            name = f"#{seq}|{item.description}"  # "#12|x" never ends with "#2|x"
            candidates_of.setdefault(seq, []).append(name)
            raw = {k: v for k, v in item.raw.items() if k != "providerStates"}
            raw["description"] = name
            pairs.append(raw)
            messages[name] = {
                "contents": orjson.dumps(event["value"]),
                "metadata": {"topic": event["topic"], "contentType": "application/json"},
            }
    if not pairs:
        return found
    failures = _verify_pairs(pact, pairs, answers, messages)
    for seq, names in sorted(candidates_of.items()):
        if all(n in failures for n in names):
            name = names[0]
            found.append(
                PactMismatch(
                    pact.edge,
                    pact.path.name,
                    seq,
                    "provider",
                    f"{name.split('|', 1)[1]}: {failures[name]}",
                )
            )
    return found


def _message_type(item: PactInteraction) -> Any:
    _, content, _ = body_content(item.raw.get("contents"))
    return content.get("type") if isinstance(content, dict) else None


def _verify_pairs(
    pact: PactFile,
    pairs: list[dict[str, Any]],
    answers: dict[tuple[str, str], dict[str, Any]],
    messages: dict[str, dict[str, Any]],
) -> dict[str, str]:
    """Run the verifier over the pairs; the failed ones with Pact's description."""
    data = json.loads(pact.path.read_text())
    data["interactions"] = pairs
    failures: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="ecom-judge-") as tmp,
        _replaying(answers, messages) as port,
    ):
        source = Path(tmp) / pact.path.name
        source.write_text(json.dumps(data))
        # Plain HTTP on loopback: no certificate is ever checked, yet with verification on
        # the engine loads the system's root certificates for every interaction (5 ms each)
        verifier = Verifier(pact.provider, host="127.0.0.1").disable_ssl_verification()
        verifier.add_transport(url=f"http://127.0.0.1:{port}")
        if messages:
            verifier.add_transport(protocol="message", port=port, path=MESSAGE_PATH)
        verifier.add_source(source)
        with contextlib.suppress(RuntimeError):  # the failures are in the results
            verifier.verify()
        for error in verifier.results.get("errors") or []:
            name = str(error.get("interaction", ""))
            mismatch = error.get("mismatch") or {}
            lines = [
                f"{m.get('path') or m.get('key') or m.get('type', '')}: "
                f"{m.get('mismatch') or m.get('description') or m}"
                for m in mismatch.get("mismatches") or []
            ] or [str(mismatch.get("message") or mismatch)]
            key = next((p["description"] for p in pairs if name.endswith(p["description"])), name)
            failures[key] = "; ".join(lines)
    return failures


def _judge_pact(journal: list[dict[str, Any]], pact: PactFile) -> list[PactMismatch]:
    found: list[PactMismatch] = []
    http = [
        e
        for e in journal
        if e.get("kind") == "http"
        and e.get("caller") == pact.consumer
        and e.get("callee") == pact.provider
        and e.get("status") is not None
        and not e.get("fault")
    ]
    if http and any(i.kind == "http" for i in pact.interactions):
        found += _consumer_side(pact, http)
    else:
        http = []
    events = [
        e
        for e in journal
        if e.get("kind") == "event"
        and e.get("publisher") == pact.provider
        and pact.consumer in (e.get("groups") or [])
        and any(i.kind == "message" for i in pact.interactions)
    ]
    return found + _provider_side(pact, http, events)


def judge_journal(journal: list[dict[str, Any]], pacts: list[PactFile]) -> list[PactMismatch]:
    """Every journaled interaction on an edge with a pact, judged against that pact (the
    pacts side by side: each verifier run mostly waits)."""
    with quiet_stdout(), ThreadPoolExecutor(max_workers=8) as pool:
        judged = list(pool.map(lambda pact: _judge_pact(journal, pact), pacts))
    return [m for found in judged for m in found]
