"""SendGrid v3 Mail Send, answered as SendGrid answers it.

Accepted mail is not delivered but recorded (:meth:`SendGridSimulator.sent_messages`),
one entry per personalization (envelope), so tests and the harness can read what was
"sent". Errors are SendGrid's ``{"errors": [{"message", "field", "help"}]}``, the engine's
own validation errors included; where the spec documents the wording for a field (its
400 and 403 examples), that wording is used.

Settings (``StubHost(settings={"sendgrid": {...}})``):

* ``verified_senders`` -- the verified Sender Identities: addresses or whole domains
  (``shop.example.com``); a ``from`` outside them is 403. Default None: every sender
  is verified.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import MetaData

from ecom_harness.specs import Api
from ecom_harness.stubs.engine import (
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
)

from ._providers import (
    FieldError,
    MessagingSimulator,
    bearer_token,
    field_errors,
    sent_messages_table,
)
from ._simulator import SimulatorContext, json_response

__all__ = ["SendGridSimulator"]

_KEY_PREFIX = "SG."
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#"
_NO_KEY = "authorization required"
_BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"
# SendGrid names a missing sender by its address member.
_REPORTED_AS = {"from": "from.email"}
_CONTENT_REQUIRED = (
    "Unless a valid template_id is provided, the content parameter is required. There must be "
    "at least one defined content block. We typically suggest both text/plain and text/html "
    "blocks are included, but only one block is required."
)
_PLAIN_FIRST = (
    "If present, text/plain must be first, followed by text/html, followed by any other content."
)
_DUPLICATE = (
    "Each email address in the personalization block should be unique between to, cc, and "
    "bcc. We found the first duplicate instance of [{email}] in the personalizations.{index}."
    "{kind} field."
)

Entry = dict[str, str | None]


def _entry(message: str, field: str | None = None, help_url: str | None = None) -> Entry:
    return {"message": message, "field": field, "help": help_url}


def _errors(status: int, entries: list[Entry]) -> StubResponse:
    return json_response(status, {"errors": entries})


def _shape(field: str) -> str:
    """``personalizations.3.to.0.email`` -> ``personalizations.N.to.N.email``."""
    return re.sub(r"(?<=\.)\d+(?=\.|$)", "N", field)


def _documented(api: Api, status: str) -> dict[str, Entry]:
    """The spec's error entries of a sendMail response, by the shape of their field."""
    media = api.operations["sendMail"].responses[status].content["application/json"]
    return {
        _shape(entry["field"]): entry
        for example in media.examples.values()
        for entry in example["errors"]
        if entry.get("field")
    }


def _denied(headers: Mapping[str, str]) -> StubResponse | None:
    """401 unless the request carries a SendGrid API key (``SG.``...)."""
    key = bearer_token(headers)
    if key is None:
        return _errors(401, [_entry(_NO_KEY)])
    return None if key.startswith(_KEY_PREFIX) else _errors(401, [_entry(_BAD_KEY)])


def _duplicates(index: int, envelope: Mapping[str, Any]) -> list[Entry]:
    """The first address an envelope repeats across to, cc and bcc (SendGrid refuses it)."""
    seen: set[str] = set()
    for kind in ("to", "cc", "bcc"):
        for address in envelope.get(kind) or []:
            email = address["email"].lower()
            if email in seen:
                message = _DUPLICATE.format(email=email, index=index, kind=kind)
                field = f"personalizations.{index}.{kind}"
                return [_entry(message, field, _HELP + "message.recipient-errors")]
            seen.add(email)
    return []


def _plain_text(mail: Mapping[str, Any]) -> str | None:
    """The text/plain content (else the first content), as a reader of the log wants it."""
    content = mail.get("content") or []
    plain = [c for c in content if c["type"] == "text/plain"] or content
    return str(plain[0]["value"]) if plain else None


class SendGridSimulator(MessagingSimulator):
    """Mail Send: 202 with ``X-Message-Id``, the mail recorded instead of delivered."""

    component = "sendgrid"
    metadata = MetaData()
    sent = sent_messages_table(metadata)

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.documented = _documented(ctx.api, "400") | _documented(ctx.api, "403")
        senders = ctx.settings.get("verified_senders")
        self.verified: frozenset[str] | None = (
            None if senders is None else frozenset(s.lower() for s in senders)
        )

    def behaviours(self) -> dict[str, Behaviour]:
        return {"sendMail": self.send_mail}

    def render_error(self) -> ErrorRenderer:
        return self._render_engine_error

    async def send_mail(self, req: ValidRequest) -> StubResponse:
        denied = _denied(req.request.headers)
        if denied is not None:
            return denied
        mail: dict[str, Any] = req.body
        if not self._verified(mail["from"]["email"]):
            return _errors(
                403, [self._described("from", "from", "The from address is not verified.")]
            )
        refused = self._refusals(mail)
        if refused:
            return _errors(400, refused)
        message_id = secrets.token_urlsafe(16)[:22]
        await self.record_sent(_envelopes(mail, message_id))
        return StubResponse(202, None, None, {"X-Message-Id": message_id})

    def _verified(self, sender: str) -> bool:
        sender = sender.lower()
        return self.verified is None or bool({sender, sender.rpartition("@")[2]} & self.verified)

    def _described(self, field: str | None, shape: str, fallback: str) -> Entry:
        """An entry worded as the spec documents errors of that field, else ``fallback``."""
        documented = self.documented.get(_shape(shape))
        if documented is None:
            return _entry(fallback, field)
        return _entry(str(documented["message"]), field, documented.get("help"))

    def _refusals(self, mail: Mapping[str, Any]) -> list[Entry]:
        """What SendGrid refuses beyond the schema: no subject anywhere, no content
        without a template, text/plain not first, an address repeated in an envelope."""
        found: list[Entry] = []
        envelopes = mail["personalizations"]
        templated = "template_id" in mail
        if not (templated or "subject" in mail or all("subject" in p for p in envelopes)):
            found.append(self._described("subject", "subject", "The subject is required."))
        types = [c["type"] for c in mail.get("content") or []]
        if not (templated or types):
            found.append(_entry(_CONTENT_REQUIRED, "content", _HELP + "message.content"))
        if "text/plain" in types and types[0] != "text/plain":
            found.append(_entry(_PLAIN_FIRST, "content", _HELP + "message.content"))
        for index, envelope in enumerate(envelopes):
            found += _duplicates(index, envelope)
        return found

    def _render_engine_error(self, found: Problem, request: StubRequest) -> StubResponse:
        """The key first, as SendGrid checks it first; then one entry per violation."""
        denied = _denied(request.headers)
        if denied is not None:
            return denied
        if found.slug in ("not-found", "method-not-allowed"):
            return _errors(404, [_entry("not found")])
        if found.slug == "payload-too-large":
            return _errors(413, [_entry("content too large")])
        errors = field_errors(found)
        if not errors:
            return _errors(400, [_entry(found.detail)])
        return _errors(400, [self._violation(error) for error in errors])

    def _violation(self, error: FieldError) -> Entry:
        """One violation; a missing sender is reported as its address, and the spec's
        wording for that (a *missing* ``from``) is not used for a malformed one."""
        field = ".".join(error.path)
        if error.kind == "missing":
            field = _REPORTED_AS.get(field, field)
        elif field in _REPORTED_AS.values():
            return _entry(error.message, field)
        return self._described(field or None, field, error.message)


def _envelopes(mail: Mapping[str, Any], message_id: str) -> list[dict[str, Any]]:
    """One log entry per personalization: its recipients, subject and template data."""
    body = _plain_text(mail)
    return [
        {
            "message_id": message_id,
            "to": [address["email"] for address in envelope["to"]],
            "from": mail["from"]["email"],
            "subject": envelope.get("subject", mail.get("subject")),
            "template_id": mail.get("template_id"),
            "dynamic_template_data": envelope.get("dynamic_template_data"),
            "body": body,
            "custom_args": (mail.get("custom_args") or {}) | (envelope.get("custom_args") or {}),
        }
        for envelope in mail["personalizations"]
    ]
