"""Reading Pact V4 files into plain data: one :class:`PactFile` per consumer -> provider edge.

The checks (``contracts check``, ``diff``, the scenario check) read the JSON the
pact-python FFI writes, not the FFI's handles: a pact file is data, and reading it must
not need the mock server's native library. Only the parts the checks use are modelled;
everything else stays in ``raw``.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

__all__ = [
    "HTTP_TYPE",
    "MESSAGE_TYPE",
    "PactError",
    "PactFile",
    "PactInteraction",
    "body_content",
    "header_value",
    "load_pact",
    "load_pacts",
]

HTTP_TYPE = "Synchronous/HTTP"
MESSAGE_TYPE = "Asynchronous/Messages"


class PactError(ValueError):
    """A pact file that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class PactInteraction:
    """One interaction of a pact, with the JSON pointer of where it sits in the file."""

    index: int
    description: str
    kind: Literal["http", "message"]
    states: tuple[str, ...]
    raw: dict[str, Any]

    @property
    def pointer(self) -> str:
        return f"/interactions/{self.index}"

    @property
    def request(self) -> dict[str, Any]:
        found = self.raw.get("request")
        return found if isinstance(found, dict) else {}

    @property
    def response(self) -> dict[str, Any]:
        found = self.raw.get("response")
        return found if isinstance(found, dict) else {}

    @property
    def metadata(self) -> dict[str, Any]:
        found = self.raw.get("metadata")
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True, slots=True)
class PactFile:
    path: Path
    consumer: str
    provider: str
    interactions: tuple[PactInteraction, ...] = field(default=())

    @property
    def edge(self) -> str:
        return f"{self.consumer}->{self.provider}"


def header_value(headers: Any, name: str) -> str | None:
    """A header of a pact request or response (V4 keeps each as a list of values)."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower() == name.lower():
            if isinstance(value, list):
                return ", ".join(str(v) for v in value)
            return str(value)
    return None


def body_content(body: Any) -> tuple[bool, Any, str | None]:
    """``(present, decoded content, content type)`` of a V4 body object.

    JSON bodies are stored as JSON; other bodies as text or, with ``encoded: base64``,
    as base64 text. A JSON body stored as a string is decoded, so checks see the data.
    """
    if not isinstance(body, dict) or "content" not in body:
        return False, None, None
    content = body["content"]
    content_type = body.get("contentType")
    encoded = body.get("encoded")
    if isinstance(content, str) and encoded == "base64":
        content = base64.b64decode(content).decode("utf-8", "replace")
    if isinstance(content, str) and _is_json(content_type):
        with contextlib.suppress(orjson.JSONDecodeError):  # not JSON after all: keep the text
            content = orjson.loads(content)
    return True, content, content_type if isinstance(content_type, str) else None


def _is_json(media_type: Any) -> bool:
    if not isinstance(media_type, str):
        return False
    base = media_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def _kind(raw: dict[str, Any], where: str) -> Literal["http", "message"]:
    kind = raw.get("type")
    if kind == HTTP_TYPE:
        return "http"
    if kind == MESSAGE_TYPE:
        return "message"
    raise PactError(
        f"{where}: interaction type {kind!r} is not supported ({HTTP_TYPE}, {MESSAGE_TYPE})"
    )


def load_pact(path: Path) -> PactFile:
    """Read one pact file; raises :class:`PactError` naming the file and pointer."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise PactError(f"{path}: cannot read: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise PactError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PactError(f"{path}: a pact file holds a JSON object")
    consumer = (data.get("consumer") or {}).get("name")
    provider = (data.get("provider") or {}).get("name")
    if not isinstance(consumer, str) or not isinstance(provider, str):
        raise PactError(f"{path}#/consumer: a pact names its consumer and provider")
    interactions = []
    for index, raw in enumerate(data.get("interactions") or []):
        where = f"{path}#/interactions/{index}"
        if not isinstance(raw, dict):
            raise PactError(f"{where}: an interaction is a JSON object")
        states = tuple(
            str(s.get("name")) for s in raw.get("providerStates") or [] if isinstance(s, dict)
        )
        interactions.append(
            PactInteraction(
                index=index,
                description=str(raw.get("description", "")),
                kind=_kind(raw, where),
                states=states,
                raw=raw,
            )
        )
    return PactFile(path, consumer, provider, tuple(interactions))


def load_pacts(folder: Path) -> list[PactFile]:
    """Every ``*.json`` pact in ``folder``, in file-name order."""
    if not folder.is_dir():
        raise PactError(f"{folder}: no such folder of pact files")
    return [load_pact(path) for path in sorted(folder.glob("*.json"))]
