"""Twilio Messages: sending an SMS, answered as Twilio answers it.

The magic test numbers are read from the spec's own table (``x-test-numbers`` in
specs/openapi/external/twilio.yaml): ``To +15005550001`` is 400 21211, ``From
+15005550008`` is 429 21611, and so on. Other numbers are accepted: 201 with an
``SM...`` sid in ``queued`` (``accepted`` when a Messaging Service picks the sender).
Accepted messages are recorded, not delivered (:meth:`TwilioSimulator.sent_messages`).
Errors, the engine's own validation errors included, are Twilio's
``{"code", "message", "more_info", "status"}``.

Settings (``StubHost(settings={"twilio": {...}})``):

* ``auth_tokens`` -- Account SID -> auth token; an account listed here needs exactly
  that token. Default {}: any non-empty token (the user name must still be the Account
  SID of the path).
* ``test_senders_only`` -- answer as Twilio's test credentials do: a ``From`` that is not
  one of the magic numbers is 400 21606. Default False.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import MetaData

from ecom_harness.stubs.engine import (
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
    route,
)

from ._providers import (
    FieldError,
    MessagingSimulator,
    basic_credentials,
    field_errors,
    sent_messages_table,
)
from ._simulator import SimulatorContext, json_response

__all__ = ["TwilioSimulator"]

_ERRORS = "https://www.twilio.com/docs/errors/"
_NOT_OWNED = (
    "The From phone number {number} is not a valid, SMS-capable inbound phone number or "
    "short code for your account."
)
# Which violation Twilio reports first, and how: field -> (code, message).
_MISSING = {
    "To": (21604, "A 'To' phone number is required."),
    "": (21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"),
    "Body": (21602, "Message body is required."),
}
_MALFORMED = {
    "To": (21211, "The 'To' number {value} is not a valid phone number."),
    "From": (
        21212,
        "The 'From' number {value} is not a valid phone number, shortcode, or alphanumeric "
        "sender ID.",
    ),
    "MessagingServiceSid": (21701, "The Messaging Service Sid {value} is invalid."),
    "Body": (21617, "The concatenated message body exceeds the 1600 character limit."),
    "StatusCallback": (21609, "The StatusCallback URL {value} is not a valid URL."),
}
_PRIORITY = ["To", "", "From", "MessagingServiceSid", "Body", "StatusCallback"]
_UNKNOWN = (20001, "Invalid parameter {field}: {value}")  # not reachable with the shipped spec
# GSM 03.38: the basic set (one septet each) and its extension (two septets each).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None, **extra: str
) -> StubResponse:
    body = {"code": code, "message": message, "more_info": f"{_ERRORS}{code}", "status": status}
    return json_response(status, body | extra, headers)


def _rfc2822(moment: datetime) -> str:
    """``Wed, 01 Jan 2025 12:00:00 +0000``, as Twilio writes dates."""
    return format_datetime(moment.astimezone(UTC))


def segments(body: str) -> int:
    """How many SMS segments a body takes: 160 GSM-7 septets (153 when concatenated), or
    70 UCS-2 units (67 when concatenated) once one character is outside GSM-7."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units = len(body) + sum(c in _GSM7_EXTENDED for c in body)
        single, part = 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def _rank(error: FieldError) -> int:
    field = ".".join(error.path)
    return _PRIORITY.index(field) if field in _PRIORITY else len(_PRIORITY)


def _violation(error: FieldError, sent: Mapping[str, str]) -> tuple[int, str]:
    """Twilio's code and message for one violation of the form."""
    field = ".".join(error.path)
    value = sent.get(field, "")
    if (error.kind == "missing" or value == "") and field in _MISSING:
        return _MISSING[field]
    code, message = _MALFORMED.get(field, _UNKNOWN)
    return code, message.format(value=value, field=field)


class TwilioSimulator(MessagingSimulator):
    """Messages: create (send) an SMS."""

    component = "twilio"
    metadata = MetaData()
    sent = sent_messages_table(metadata)

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        spec = ctx.api.document.data
        self.test_numbers: Mapping[str, list[Mapping[str, Any]]] = spec["x-test-numbers"]
        self.api_version = str(spec["info"]["version"])
        self.auth_tokens: Mapping[str, str] = dict(ctx.settings.get("auth_tokens") or {})
        self.test_senders_only = bool(ctx.settings.get("test_senders_only", False))

    def behaviours(self) -> dict[str, Behaviour]:
        return {"createMessage": self.create_message}

    def render_error(self) -> ErrorRenderer:
        return self._render_engine_error

    async def create_message(self, req: ValidRequest) -> StubResponse:
        account = req.params["path"]["AccountSid"]
        denied = self._denied(req.request.headers, account)
        if denied is not None:
            return denied
        params: dict[str, Any] = req.body
        refused = self._refused(params)
        if refused is not None:
            return refused
        message = self._new_message(account, params)
        sender = message["from"] or message["messaging_service_sid"]
        await self.record_sent(
            [
                {
                    "message_id": message["sid"],
                    "to": [message["to"]],
                    "from": sender,
                    "body": message["body"],
                }
            ]
        )
        return json_response(201, message)

    def _denied(self, headers: Mapping[str, str], account: str) -> StubResponse | None:
        """401 20003 unless Basic credentials name the path's account (with its token,
        when ``auth_tokens`` knows it)."""
        credentials = basic_credentials(headers)
        if credentials is not None and self._genuine(account, *credentials):
            return None
        return _error(
            401,
            20003,
            "Authenticate",
            {"WWW-Authenticate": 'Basic realm="Twilio API"'},
            detail="Your AccountSid or AuthToken was incorrect.",
        )

    def _genuine(self, account: str, user: str, token: str) -> bool:
        expected = self.auth_tokens.get(account)
        if user != account or not token:
            return False
        return expected is None or hmac.compare_digest(token, expected)

    def _magic(self, number: str | None, role: str) -> Mapping[str, Any] | None:
        """The spec's entry for a magic number in that role, if it is one."""
        entries = self.test_numbers.get(number or "", [])
        return next((e for e in entries if e["role"] == role), None)

    def _refused(self, params: Mapping[str, Any]) -> StubResponse | None:
        """The magic numbers' errors, the sender checked before the recipient; with
        ``test_senders_only`` a sender that is no magic number is refused as not owned."""
        sender = params.get("From")
        sender_entry = self._magic(sender, "from")
        if sender_entry is None and self.test_senders_only and sender is not None:
            return _error(400, 21606, _NOT_OWNED.format(number=sender))
        for entry in (sender_entry, self._magic(params["To"], "to")):
            if entry is not None and entry["error_code"] is not None:
                return _error(entry["http_status"], entry["error_code"], entry["message"])
        return None

    def _new_message(self, account: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The Message as created: ``queued``, or ``accepted`` while a Messaging Service
        still has to pick the sender (a ``From`` of ``MG...`` names a service too)."""
        sender = params.get("From")
        service = params.get("MessagingServiceSid")
        if sender is not None and sender.startswith("MG"):
            sender, service = None, service or sender
        sid = "SM" + secrets.token_hex(16)
        uri = f"/{self.api_version}/Accounts/{account}/Messages/{sid}"
        now = _rfc2822(self.ctx.clock())
        return {
            "account_sid": account,
            "api_version": self.api_version,
            "body": params["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if sender is None else str(segments(params["Body"])),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if sender is None else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": params["To"],
            "uri": f"{uri}.json",
        }

    def _render_engine_error(self, found: Problem, request: StubRequest) -> StubResponse:
        """Twilio answers an unknown resource with 404 20404, checks the credentials, then
        reports one violation of the form (the one it checks first)."""
        routed = route(self.ctx.api, request.method, request.path)
        errors = field_errors(found)
        if isinstance(routed, Problem) or any(e.location == "path" for e in errors):
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        denied = self._denied(request.headers, routed[1].get("AccountSid", ""))
        if denied is not None:
            return denied
        if not errors:
            return _error(400, _UNKNOWN[0], found.detail)
        first = min(errors, key=_rank)
        sent = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        return _error(400, *_violation(first, sent))
