"""From the plan to pact-python ``Pact`` objects (V4): HTTP and asynchronous messages.

Values are made canonical in one deterministic walk (sorted pacts, sorted interactions,
each interaction's setup first), so the files are byte-identical run after run. A value
the provider itself made earlier in the scenario (a reservation id it answered, a token
it issued) is marked for injection: the request carries a ProviderState generator, and
the state set-up returns the value the provider makes this time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pact import Pact, match

from ecom_harness.specs import Api

from .canonical import Canonicalizer, is_dynamic
from .plan import HttpPlan, MessagePlan
from .schema_walk import follow_refs
from .served import static_credentials
from .shapes import loose_request, shaped
from .spec_index import SpecIndex, payload_pointer

__all__ = ["BuiltPact", "add_http", "build_pacts", "pact_name"]

# A canonical made-up value: an id (prefix_000...N) or a long digit run (hash, SID, number).
_TOKEN = re.compile(
    r"\b[a-z]{2,4}_[0-9]{8,40}\b|(?<![A-Za-z0-9])(?:SM|AC)?[0-9]{14,64}(?![A-Za-z0-9])"
)
SECRET = "[redacted]"
FORM_TYPE = "application/x-www-form-urlencoded"
# Transport headers say nothing about the contract; content-type goes with the body.
_TRANSPORT_HEADERS = frozenset(
    {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        "content-type",
    }
)
SECRET_KEY = "secret"


def pact_name(consumer: str, provider: str) -> str:
    return f"{consumer}-{provider}"


@dataclass(slots=True)
class BuiltPact:
    consumer: str
    provider: str
    pact: Pact
    http: list[HttpPlan] = field(default_factory=list)
    messages: list[tuple[MessagePlan, dict[str, Any]]] = field(default_factory=list)  # + payload

    @property
    def name(self) -> str:
        return pact_name(self.consumer, self.provider)


def _form_or_json(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    return "form" if base == FORM_TYPE else "json"


class _Captures:
    """Which canonical values the provider made during the set-up, and where."""

    def __init__(self) -> None:
        self.where: dict[str, list[Any]] = {}

    def learn(self, step: int, response: Any, pointer: str = "") -> None:
        if isinstance(response, dict):
            for key, value in response.items():
                self.learn(step, value, f"{pointer}/{_escape(key)}")
        elif isinstance(response, list):
            for index, value in enumerate(response):
                self.learn(step, value, f"{pointer}/{index}")
        elif isinstance(response, str):
            if response == SECRET:
                self.where[SECRET_KEY] = [step, pointer]
            elif _TOKEN.fullmatch(response):
                self.where.setdefault(response, [step, pointer])

    def injectable(self, value: str) -> list[str]:
        if value == SECRET and SECRET_KEY in self.where:
            return [SECRET_KEY]
        return [t for t in _TOKEN.findall(value) if t in self.where]

    def expression(self, value: str) -> str:
        if value == SECRET:
            return "${" + SECRET_KEY + "}"
        return _TOKEN.sub(
            lambda m: "${" + m.group(0) + "}" if m.group(0) in self.where else m.group(0), value
        )


def _escape(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _canonical_setup(
    canon: Canonicalizer, setup: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], _Captures]:
    captures = _Captures()
    steps = []
    for index, step in enumerate(setup):
        request = {
            "method": step["method"],
            "path": canon.string(step["path"]),
            "query": canon.string(step["query"]),
            "headers": {k: v for k, v in canon.value(step["headers"]).items() if v != SECRET},
            "body": canon.value(step["body"]),
        }
        response = canon.value(step.get("response"))
        steps.append(request)
        captures.learn(index, response)
    return steps, captures


def _response_schema(
    api: Api | None, operation_id: str, status: int, media_type: str
) -> tuple[dict[str, Any], str | None, Any]:
    """``(document, schema pointer, first named example)`` of an answer in the spec."""
    if api is None:
        return {}, None, None
    operation = api.operations.get(operation_id)
    if operation is None:
        return api.document.data, None, None
    code = str(status)
    response = (
        operation.responses.get(code)
        or operation.responses.get(f"{code[0]}XX")
        or operation.responses.get("default")
    )
    media = response.content.get(media_type) if response else None
    if media is None:
        return api.document.data, None, None
    return api.document.data, media.schema_pointer, next(iter(media.examples.values()), None)


def _body_generators(captures: _Captures, body: Any, pointer: str = "$") -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(body, dict):
        for key, value in body.items():
            found |= _body_generators(
                captures,
                value,
                f"{pointer}.{key}" if re.fullmatch(r"\w+", key) else f"{pointer}['{key}']",
            )
    elif isinstance(body, list):
        for index, value in enumerate(body):
            found |= _body_generators(captures, value, f"{pointer}[{index}]")
    elif isinstance(body, str) and captures.injectable(body):
        found[pointer] = {
            "type": "ProviderState",
            "expression": captures.expression(body),
            "dataType": "STRING",
        }
    return found


def _state_generator(captures: _Captures, value: str) -> dict[str, str]:
    return {"type": "ProviderState", "expression": captures.expression(value), "dataType": "STRING"}


def _path_pattern(path: str) -> str:
    """A regex for a path holding made-up values: each such value, any id."""
    pieces, last = [], 0
    for found in _TOKEN.finditer(path):
        pieces += [re.escape(path[last : found.start()]), "[A-Za-z0-9_-]+"]
        last = found.end()
    return "^" + "".join([*pieces, re.escape(path[last:])]) + "$"


@dataclass(slots=True)
class _Request:
    """One interaction's request under construction, and its ProviderState generators."""

    interaction: Any
    plan: HttpPlan
    canon: Canonicalizer
    captures: _Captures
    generators: dict[str, Any] = field(default_factory=dict)

    def line(self) -> None:
        entry, captures = self.plan.entry, self.captures
        path = self.canon.string(entry["path"])
        if _TOKEN.search(path):
            self.interaction.with_request(
                entry["method"], match.regex(path, regex=_path_pattern(path))
            )
            if captures.injectable(path):
                self.generators["path"] = _state_generator(captures, path)
        else:
            self.interaction.with_request(entry["method"], path)
        query = self.canon.string(entry.get("query") or "")
        for name, value in parse_qsl(query, keep_blank_values=True):
            dynamic = is_dynamic(value) or _TOKEN.search(value)
            self.interaction.with_query_parameter(name, match.type(value) if dynamic else value)

    def headers(self, credentials: dict[str, str]) -> None:
        """Headers the contract is about (not transport ones); credentials, redacted in
        the journal, as the provider's test credentials matched by type."""
        headers = {k.lower(): v for k, v in (self.plan.entry.get("request_headers") or {}).items()}
        for name in sorted(set(headers) - _TRANSPORT_HEADERS):
            value = headers[name]
            if value == SECRET:
                self.interaction.with_header(
                    name, match.type(credentials.get(name, "ecom-harness"))
                )
                continue
            value = self.canon.string(value)
            loose = f"/header/{name}" in self.plan.loose
            dynamic = is_dynamic(value) or bool(_TOKEN.search(value)) or loose
            self.interaction.with_header(name, match.type(value) if dynamic else value)
            if self.captures.injectable(value):
                self.generators.setdefault("header", {})[name] = _state_generator(
                    self.captures, value
                )

    def body(self) -> None:
        entry = self.plan.entry
        body = self.canon.value(entry.get("request_body"))
        if body is None:
            return
        content_type = {k.lower(): v for k, v in (entry.get("request_headers") or {}).items()}.get(
            "content-type"
        )
        loose = set(self.plan.loose) | _dynamic_pointers(body)
        if _form_or_json(content_type) == "form":
            flat = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
            self.interaction.with_body(urlencode(flat), content_type=FORM_TYPE, part="Request")
            rules = {
                f"$['{k}']": {"combine": "AND", "matchers": [{"match": "type"}]}
                for k in sorted(flat)
                if f"/{k}" in loose
            }
            if rules:
                self.interaction.with_matching_rules({"body": rules}, "Request")
            return
        self.interaction.with_body(
            loose_request(body, loose), content_type="application/json", part="Request"
        )
        body_generators = _body_generators(self.captures, body)
        if body_generators:
            self.generators["body"] = body_generators


def add_http(pact: Pact, plan: HttpPlan, canon: Canonicalizer, api: Api | None) -> None:
    """One HTTP interaction: the state (with its set-up), the request, the answer."""
    entry = plan.entry
    setup, captures = _canonical_setup(canon, plan.state_params.get("setup", []))
    params = dict(plan.state_params)
    if setup:
        params["setup"] = setup
        params["captures"] = dict(sorted(captures.where.items()))
    interaction = pact.upon_receiving(plan.description).given(plan.state, params)
    request = _Request(interaction, plan, canon, captures)
    request.line()
    request.headers({k.lower(): v for k, v in static_credentials(api).items()} if api else {})
    request.body()
    if request.generators:
        interaction.with_generators(request.generators, "Request")
    status = int(entry["status"])
    interaction.will_respond_with(status)
    response_headers = {k.lower(): v for k, v in (entry.get("response_headers") or {}).items()}
    response_type = response_headers.get("content-type")
    answer = canon.value(entry.get("response_body"))
    if answer is not None and response_type:
        media_type = response_type.split(";")[0]
        data, pointer, example = _response_schema(api, entry["operation_id"], status, media_type)
        interaction.with_body(
            shaped(data, pointer, _fill_secrets(answer, example), frozenset(plan.loose_answer)),
            content_type=media_type,
            part="Response",
        )


def _dynamic_pointers(value: Any, pointer: str = "") -> set[str]:
    if isinstance(value, dict):
        return (
            set().union(*(_dynamic_pointers(v, f"{pointer}/{k}") for k, v in value.items()))
            if value
            else set()
        )
    if isinstance(value, list):
        return (
            set().union(*(_dynamic_pointers(v, f"{pointer}/{i}") for i, v in enumerate(value)))
            if value
            else set()
        )
    if is_dynamic(value) or (isinstance(value, str) and _TOKEN.search(value)):
        return {pointer}
    return set()


def _fill_secrets(answer: Any, example: Any) -> Any:
    """Secrets are redacted in the journal; in the pact they become the spec's own example
    value for that field, so the example still fits the schema (matched by type)."""

    def walk(value: Any, sample: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: walk(v, sample.get(k) if isinstance(sample, dict) else None)
                for k, v in value.items()
            }
        if isinstance(value, list):
            first = sample[0] if isinstance(sample, list) and sample else None
            return [walk(v, first) for v in value]
        if value == SECRET and isinstance(sample, str):
            return sample
        return value

    return walk(answer, example)


def _add_message(
    pact: Pact, plan: MessagePlan, canon: Canonicalizer, index: SpecIndex
) -> dict[str, Any]:
    entry = plan.entry
    setup, captures = _canonical_setup(canon, plan.state_params.get("setup", []))
    params = dict(plan.state_params)
    if setup:
        params["setup"] = setup
        params["captures"] = dict(sorted(captures.where.items()))
    payload = canon.value(entry["value"])
    channel = index.channels.get(entry["topic"])
    data: dict[str, Any] = channel.document.data if channel else {}
    pointer = None
    if channel is not None and entry["message_type"] in channel.messages:
        pointer = payload_pointer(data, channel.messages[entry["message_type"]])
        pointer = follow_refs(data, pointer) if pointer else None
    (
        pact.upon_receiving(plan.description, "Async")
        .given(plan.state, params)
        .with_body(shaped(data, pointer, payload), content_type="application/json")
        .with_metadata({"topic": entry["topic"]})
    )
    return dict(payload)


def build_pacts(
    http: list[HttpPlan], messages: list[MessagePlan], index: SpecIndex
) -> list[BuiltPact]:
    """One pact per consumer -> provider edge, interactions in description order."""
    pacts: dict[str, BuiltPact] = {}

    def pact_for(consumer: str, provider: str) -> BuiltPact:
        name = pact_name(consumer, provider)
        if name not in pacts:
            pact = Pact(consumer, provider).with_specification("V4")
            pacts[name] = BuiltPact(consumer, provider, pact)
        return pacts[name]

    for plan in http:
        pact_for(plan.consumer, plan.provider).http.append(plan)
    for message in messages:
        pact_for(message.consumer, message.provider).messages.append((message, {}))
    canon = Canonicalizer()
    for name in sorted(pacts):
        built = pacts[name]
        api = index.api(built.provider)
        for plan in sorted(built.http, key=lambda p: p.description):
            add_http(built.pact, plan, canon, api)
        built.messages = [
            (message, _add_message(built.pact, message, canon, index))
            for message, _ in sorted(built.messages, key=lambda m: m[0].description)
        ]
    return [pacts[name] for name in sorted(pacts)]
