"""``contracts check``: every interaction of every pact, checked against the provider's spec.

Static and two-sided: the request a consumer sends must be one the provider's OpenAPI
accepts (path, method, parameters, credentials, body), and the answer the consumer relies
on must be one the spec promises (a declared status and media type, every field the
consumer reads still there with its type and enum value). A message a consumer expects
must travel on a channel of the AsyncAPI, be sent by the pact's provider, and have the
payload schema's fields and types. So a spec change that would break a consumer is
caught before any provider runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ecom_harness.specs import (
    Api,
    PointerError,
    SchemaSet,
    display_path,
    join_pointer,
    resolve_pointer,
)
from ecom_harness.stubs.engine import decode_form

from .findings import Finding
from .pacts import PactFile, PactInteraction, body_content, header_value
from .schema_walk import follow_refs, iter_relied_fields, schema_at_path, subschemas
from .spec_index import SpecIndex, payload_pointer

__all__ = ["check_interaction", "check_pacts"]

# How a jsonschema-rs error kind reads as a contract rule.
_KIND_RULES = {"Type": "type-changed", "Enum": "enum-value-dropped", "Const": "enum-value-dropped"}


def check_pacts(pacts: list[PactFile], index: SpecIndex) -> list[Finding]:
    """Every finding of every interaction of every pact, in a stable order."""
    findings: list[Finding] = []
    for pact in pacts:
        for interaction in pact.interactions:
            findings.extend(check_interaction(pact, interaction, index))
    return findings


def check_interaction(
    pact: PactFile, interaction: PactInteraction, index: SpecIndex
) -> list[Finding]:
    if interaction.kind == "http":
        return list(_HttpCheck(pact, interaction, index).run())
    return list(_MessageCheck(pact, interaction, index).run())


@dataclass(slots=True)
class _Context:
    """What every finding of one interaction shares."""

    pact: PactFile
    interaction: PactInteraction
    spec: str

    def finding(self, pointer: str, message: str, rule: str, pact_pointer: str) -> Finding:
        return Finding(
            pact=display_path(self.pact.path),
            interaction=self.interaction.description,
            spec=self.spec,
            pointer=pointer,
            message=message,
            rule=rule,
            pact_pointer=pact_pointer,
        )


def _media_base(media_type: str | None) -> str:
    return (media_type or "").split(";", 1)[0].strip().lower()


def _body_findings(  # noqa: PLR0917 - one call per side, all explicit
    ctx: _Context,
    data: dict[str, Any],
    schemas: SchemaSet,
    schema_pointer: str,
    value: Any,
    pact_pointer: str,
    *,
    request: bool,
) -> Iterator[Finding]:
    """The ways a body breaks its schema, in contract terms.

    For an answer (or a message) the consumer *reads*, a field the schema does not declare
    is one it relies on that is gone; a missing required field is not a finding (a pact
    lists only what the consumer needs). For a request the consumer *sends*, a required
    field it does not send is a new required field.
    """
    if not request:
        for path, name, object_pointer in iter_relied_fields(data, schema_pointer, value):
            shown = "/".join(str(p) for p in path)
            yield ctx.finding(
                join_pointer(object_pointer, "properties"),
                f"field '{name}' ({shown}) the consumer relies on is not in the schema",
                "field-removed",
                join_pointer(pact_pointer, *path),
            )
    for error in schemas.validator(schema_pointer).iter_errors(value):
        kind = type(error.kind).__name__
        instance_path: list[str | int] = list(error.instance_path)
        if kind == "AdditionalProperties" and request:
            location = schema_at_path(data, schema_pointer, instance_path) or schema_pointer
            yield ctx.finding(
                _keyword_pointer(data, location, "additionalProperties"),
                f"the consumer sends {error.message[error.message.find('(') :]} "
                "which the schema does not accept",
                "field-removed",
                join_pointer(pact_pointer, *instance_path),
            )
            continue
        if kind in ("AdditionalProperties", "Required") and not request:
            continue
        rule = "required-field-added" if kind == "Required" else _KIND_RULES.get(kind)
        location = schema_at_path(data, schema_pointer, instance_path) or schema_pointer
        keyword = {"Type": "type", "Enum": "enum", "Const": "const", "Required": "required"}
        yield ctx.finding(
            _keyword_pointer(data, location, keyword.get(kind)),
            error.message,
            rule or "schema-mismatch",
            join_pointer(pact_pointer, *instance_path),
        )


def _keyword_pointer(data: dict[str, Any], pointer: str, keyword: str | None) -> str:
    """The pointer of ``keyword`` in the schema at ``pointer`` (refs, combinators followed)."""
    if keyword is None:
        return follow_refs(data, pointer)
    for current in subschemas(data, pointer):
        try:
            node = resolve_pointer(data, current)
        except PointerError:
            continue
        if isinstance(node, dict) and keyword in node:
            return join_pointer(current, keyword)
    return follow_refs(data, pointer)


class _HttpCheck:
    def __init__(self, pact: PactFile, interaction: PactInteraction, index: SpecIndex):
        self.interaction = interaction
        self.api: Api | None = index.api(pact.provider)
        spec = self.api.document.display if self.api else "-"
        self.ctx = _Context(pact, interaction, spec)
        self.at = interaction.pointer

    def run(self) -> Iterator[Finding]:
        if self.api is None:
            yield self.ctx.finding(
                "",
                f"no OpenAPI document has info.x-component '{self.ctx.pact.provider}'",
                "provider-spec-missing",
                "/provider",
            )
            return
        request = self.interaction.request
        method = str(request.get("method", "GET")).upper()
        path = str(request.get("path", "/"))
        candidates = [op for op in self.api.routes if op.path_regex.match(path)]
        operation = next((op for op in candidates if op.method == method), None)
        if operation is None:
            if candidates:
                yield self.ctx.finding(
                    candidates[0].pointer.rsplit("/", 1)[0],
                    f"{method} is not an operation of {candidates[0].path}",
                    "method-missing",
                    join_pointer(self.at, "request", "method"),
                )
            else:
                yield self.ctx.finding(
                    "/paths",
                    f"no path of the spec matches {method} {path}",
                    "path-missing",
                    join_pointer(self.at, "request", "path"),
                )
            return
        match = operation.path_regex.match(path)
        assert match is not None
        path_values = {operation.path_groups[g]: v for g, v in match.groupdict().items()}
        yield from self._parameters(operation, request, path_values)
        yield from self._security(operation, request)
        yield from self._request_body(operation, request)
        yield from self._response(operation)

    def _query(self, request: dict[str, Any]) -> dict[str, list[str]]:
        query = request.get("query")
        if isinstance(query, str):  # older pacts keep the query as a string
            return parse_qs(query, keep_blank_values=True)
        if isinstance(query, dict):
            return {
                str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
                for k, v in query.items()
            }
        return {}

    def _parameters(
        self, operation: Any, request: dict[str, Any], path_values: dict[str, str]
    ) -> Iterator[Finding]:
        assert self.api is not None
        query = self._query(request)
        headers = request.get("headers") or {}
        declared_query = {p.name for p in operation.parameters if p.location == "query"}
        for name in sorted(set(query) - declared_query):
            yield self.ctx.finding(
                join_pointer(operation.pointer, "parameters"),
                f"query parameter '{name}' is not declared",
                "parameter-undeclared",
                join_pointer(self.at, "request", "query", name),
            )
        for param in operation.parameters:
            raw: list[str] | None
            if param.location == "path":
                raw = [path_values[param.name]] if param.name in path_values else None
            elif param.location == "query":
                raw = query.get(param.name)
            elif param.location == "header":
                value = header_value(headers, param.name)
                raw = None if value is None else [value]
            else:
                continue
            pact_at = join_pointer(self.at, "request", param.location, param.name)
            if raw is None:
                if param.required:
                    yield self.ctx.finding(
                        param.schema_pointer.rsplit("/", 1)[0]
                        if param.schema_pointer
                        else operation.pointer,
                        f"required {param.location} parameter '{param.name}' is not sent",
                        "required-parameter-added",
                        join_pointer(self.at, "request"),
                    )
                continue
            if param.schema_pointer is None:
                continue
            typed = [param.coerce(v) for v in raw] if param.is_array else param.coerce(raw[0])
            for violation in self.api.schemas.violations(param.schema_pointer, typed):
                yield self.ctx.finding(
                    param.schema_pointer,
                    f"{param.location} parameter '{param.name}': {violation.message}",
                    "parameter-invalid",
                    pact_at,
                )

    def _security(self, operation: Any, request: dict[str, Any]) -> Iterator[Finding]:
        assert self.api is not None
        if not operation.security or any(not req for req in operation.security):
            return
        headers = request.get("headers") or {}
        for requirement in operation.security:
            if all(self._has_credential(name, headers) for name in requirement):
                return
        names = " or ".join("+".join(req) for req in operation.security)
        yield self.ctx.finding(
            join_pointer(operation.pointer, "security")
            if "security" in self._raw_operation(operation)
            else "/security",
            f"the request carries no credential for {names}",
            "security-missing",
            join_pointer(self.at, "request", "headers"),
        )

    def _raw_operation(self, operation: Any) -> dict[str, Any]:
        assert self.api is not None
        found = resolve_pointer(self.api.document.data, operation.pointer)
        return found if isinstance(found, dict) else {}

    def _has_credential(self, scheme_name: str, headers: Any) -> bool:
        assert self.api is not None
        scheme = self.api.security_schemes.get(scheme_name) or {}
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            return header_value(headers, str(scheme.get("name", ""))) is not None
        if scheme.get("type") in ("http", "oauth2", "openIdConnect"):
            return header_value(headers, "Authorization") is not None
        return True  # cookies, query keys: not something a pact request carries here

    def _request_body(self, operation: Any, request: dict[str, Any]) -> Iterator[Finding]:
        assert self.api is not None
        present, content, content_type = body_content(request.get("body"))
        pact_at = join_pointer(self.at, "request", "body")
        if not present:
            if operation.body_required:
                yield self.ctx.finding(
                    join_pointer(operation.pointer, "requestBody"),
                    "the spec requires a request body; the consumer sends none",
                    "request-body-required",
                    pact_at,
                )
            return
        media_type = _media_base(
            content_type or header_value(request.get("headers"), "Content-Type")
        )
        media = next((m for t, m in operation.body.items() if _media_base(t) == media_type), None)
        if media is None:
            accepted = ", ".join(operation.body) or "no body"
            yield self.ctx.finding(
                join_pointer(operation.pointer, "requestBody"),
                f"the consumer sends {media_type or 'a body'}; the spec accepts {accepted}",
                "request-media-type",
                pact_at,
            )
            return
        if media_type == "application/x-www-form-urlencoded" and isinstance(content, str):
            content = decode_form(self.api, media.schema_pointer, content.encode())
        if media.schema_pointer is not None:
            yield from _body_findings(
                self.ctx,
                self.api.document.data,
                self.api.schemas,
                media.schema_pointer,
                content,
                join_pointer(pact_at, "content"),
                request=True,
            )

    def _response(self, operation: Any) -> Iterator[Finding]:
        assert self.api is not None
        response = self.interaction.response
        status = str(response.get("status", 200))
        spec = (
            operation.responses.get(status)
            or operation.responses.get(f"{status[0]}XX")
            or operation.responses.get("default")
        )
        pact_at = join_pointer(self.at, "response")
        if spec is None:
            declared = ", ".join(operation.responses) or "none"
            yield self.ctx.finding(
                join_pointer(operation.pointer, "responses"),
                f"status {status} is not declared (declared: {declared})",
                "status-undeclared",
                join_pointer(pact_at, "status"),
            )
            return
        present, content, content_type = body_content(response.get("body"))
        if not present:
            return
        media_type = _media_base(
            content_type or header_value(response.get("headers"), "Content-Type")
        )
        media = next((m for t, m in spec.content.items() if _media_base(t) == media_type), None)
        if media is None:
            declared = ", ".join(spec.content) or "no body"
            yield self.ctx.finding(
                join_pointer(operation.pointer, "responses", spec.status, "content"),
                f"status {status} with {media_type or 'a body'} is not declared ({declared})",
                "media-type-undeclared",
                join_pointer(pact_at, "body"),
            )
            return
        if media.schema_pointer is not None:
            yield from _body_findings(
                self.ctx,
                self.api.document.data,
                self.api.schemas,
                media.schema_pointer,
                content,
                join_pointer(pact_at, "body", "content"),
                request=False,
            )


def _message_topic(interaction: PactInteraction) -> str | None:
    metadata = interaction.metadata
    for key in ("topic", "kafka_topic", "destination"):
        value = metadata.get(key)
        if isinstance(value, str):
            return value
    return None


class _MessageCheck:
    def __init__(self, pact: PactFile, interaction: PactInteraction, index: SpecIndex):
        self.pact = pact
        self.interaction = interaction
        self.index = index
        self.at = interaction.pointer
        async_specs = sorted({c.document.display for c in index.channels.values()})
        self.ctx = _Context(pact, interaction, async_specs[0] if async_specs else "-")

    def run(self) -> Iterator[Finding]:
        topic = _message_topic(self.interaction)
        channel = self.index.channels.get(topic or "")
        if channel is None:
            yield self.ctx.finding(
                "/channels",
                f"no channel has the address '{topic}'" if topic else "the message names no topic",
                "channel-missing",
                join_pointer(self.at, "metadata", "topic"),
            )
            return
        self.ctx.spec = channel.document.display
        if self.pact.provider not in channel.senders:
            yield self.ctx.finding(
                "/operations",
                f"no send operation of '{self.pact.provider}' on channel '{channel.channel_id}'",
                "not-a-sender",
                "/provider",
            )
        if self.pact.consumer not in channel.receivers:
            yield self.ctx.finding(
                "/operations",
                f"no receive operation of '{self.pact.consumer}' on channel '{channel.channel_id}'",
                "not-a-receiver",
                "/consumer",
            )
        present, content, _ = body_content(self.interaction.raw.get("contents"))
        message_type = content.get("type") if present and isinstance(content, dict) else None
        message = channel.messages.get(str(message_type))
        if message is None:
            yield self.ctx.finding(
                join_pointer(channel.pointer, "messages"),
                f"channel '{channel.channel_id}' carries no message '{message_type}'",
                "message-missing",
                join_pointer(self.at, "contents", "content", "type"),
            )
            return
        data = channel.document.data
        schema_pointer = payload_pointer(data, message)
        if schema_pointer is None:
            return
        yield from _body_findings(
            self.ctx,
            data,
            self.index.async_schemas(channel.document),
            schema_pointer,
            content,
            join_pointer(self.at, "contents", "content"),
            request=False,
        )


def default_pact_dir() -> Path:
    """The committed pacts: ``contracts/`` of the checkout or of the installed package."""
    from ecom_harness.contracts import pact_dir

    return pact_dir()
