"""notify-svc: emails (SendGrid) and texts (Twilio) customers about their orders.

Fed by Kafka only: group ``notify-svc`` on the ``orders``, ``payments`` and ``shipments``
topics (when the host has a bus). Its HTTP API is a read API over what it sent.

Whom to tell. ``order.placed`` (the first event of every order), ``order.confirmed`` and
``order.rejected`` carry the customer's ``email`` and ``phone``, and notify-svc may call
no other service; so it remembers them per order (``contacts``), and an event to notify
about while the order's contact is not known waits in its ``inbox``; an event that
brings the contact sends everything waiting for that order, then itself. A
``shipment.scheduled`` that arrives before the confirmation (another topic, so no order
between them) is thus sent once the confirmation comes; a ``payment.failed`` (which
carries no contact) reaches the customer through the contact of the order's
``order.placed``. (An event whose contact is known is sent at once, not kept and read
back: through the inbox every mail cost three more round trips to the database, issue
15.)

Idempotent by event id, per channel: ``notifications`` has a unique (event_id, channel).
The row is inserted *before* the provider is called (the claim), as ``failed`` with
the error "interrupted", and updated with the provider's answer after it:

* a redelivered event (the bus is at least once) finds its claims and sends nothing
  twice -- and a channel not yet claimed when an earlier delivery failed is still sent,
  so nothing is lost either;
* two deliveries racing on one event: the unique constraint lets exactly one claim win;
* a crash between the claim and the provider's answer leaves a visible ``failed``
  "interrupted" row rather than a second message: for email and SMS a duplicate is the
  worse error, and neither provider here takes an idempotency key that would make a
  retry safe. (Send-then-record would duplicate on every crash after sending.)

Events of one order are handled one at a time (a lock per order id, across the three
topics): the inbox logic needs it -- a ``shipment.scheduled`` that checks for the
contact while the confirmation is still being stored would be kept and never sent.
Events of different orders run side by side (one global lock made the emails lag the
orders by seconds under load, issue 15), and so do records of different partitions of
one topic (the subscription is ``concurrent``; each partition is still in order).
Racing claims of one event are settled by the unique constraint on either backend: the
embedded SQLite pool hands its one connection to one transaction at a time, so a losing
claim's rollback undoes only its own rows.

Provider refusals (4xx/5xx) and unreachable providers are recorded as ``failed`` with
the provider's error; they are not retried.

Settings (``settings["notify-svc"]``):

==================== ================================ ====================================
key                  default                          meaning
==================== ================================ ====================================
sendgrid_api_key     ``SG.ecomharness``               ``Authorization: Bearer`` to SendGrid
email_from           ``orders@shop.example.com``      the mails' ``from`` address
email_from_name      ``Example Shop``                 ... and display name
twilio_account_sid   ``AC`` + 32 hex (see below)      Basic user name, and in the path
twilio_auth_token    ``ecomharness``                  Basic password
twilio_from          ``+15005550006``                 the SMS sender (Twilio's magic test
                                                      number that passes validation)
==================== ================================ ====================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cachetools import LRUCache
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.events import Record
from ecom_harness.stubs.state import insert_into, new_id, upsert_into

from ._idempotency import KeyedLocks
from ._paging import invalid_cursor, keyset_page, page_of
from ._simulator import (
    Simulator,
    SimulatorContext,
    add_missing_rows,
    health_behaviour,
    json_response,
    not_found,
    rfc3339,
)

__all__ = ["TEMPLATES", "NotifySimulator", "Template"]

TOPICS = ("orders", "payments", "shipments")
GROUP = "notify-svc"
INTERRUPTED = "interrupted before the provider's answer was recorded"
CONTACTS_IN_MEMORY = 4096  # the newest orders' contacts, also kept out of the database
DEFAULT_SETTINGS: Mapping[str, str] = {
    "sendgrid_api_key": "SG.ecomharness",
    "email_from": "orders@shop.example.com",
    "email_from_name": "Example Shop",
    "twilio_account_sid": "AC0ec0ffee0ec0ffee0ec0ffee0ec0ffee",
    "twilio_auth_token": "ecomharness",
    "twilio_from": "+15005550006",
}
NOTIFICATION_FIELDS = (
    "notification_id",
    "event_id",
    "event_type",
    "order_id",
    "channel",
    "recipient",
    "template",
    "provider",
    "provider_message_id",
    "status",
    "error",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class Template:
    """What one kind of event tells the customer; fields are the event's ``order_id``,
    its ``data`` members, ``money`` (amount and currency) and ``carrier_name``."""

    name: str
    subject: str
    text: str

    def render(self, event: Mapping[str, Any]) -> tuple[str, str]:
        """(subject, text) of ``event``."""
        fields = {**event["data"], "order_id": event["order_id"], **_derived(event["data"])}
        return self.subject.format_map(fields), self.text.format_map(fields)


# Events without a template (order.placed, payment.succeeded) notify nobody: the
# confirmation tells the customer about both.
TEMPLATES: Mapping[str, Template] = {
    "order.confirmed": Template(
        "order_confirmed",
        "Your order {order_id} is confirmed",
        "Thank you! Your order {order_id} is confirmed; we charged {money}.",
    ),
    "order.cancelled": Template(
        "order_cancelled",
        "Your order {order_id} was cancelled",
        "Your order {order_id} was cancelled.",
    ),
    "order.rejected": Template(
        "order_rejected",
        "Your order {order_id} could not be completed",
        "We could not complete your order {order_id} ({reason}); nothing stays charged.",
    ),
    "payment.failed": Template(
        "payment_failed",
        "The payment for your order {order_id} failed",
        "Your payment of {money} for order {order_id} was declined ({decline_code}).",
    ),
    "payment.refunded": Template(
        "payment_refunded",
        "Refund for your order {order_id}",
        "We refunded {money} for your order {order_id}.",
    ),
    "shipment.scheduled": Template(
        "shipment_scheduled",
        "Your order {order_id} is on its way",
        "Your order {order_id} ships with {carrier_name}, tracking number "
        "{tracking_number}, expected on {estimated_delivery}.",
    ),
}


def _derived(data: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    amount = data.get("amount", data.get("total_amount"))
    if isinstance(amount, int) and "currency" in data:
        found["money"] = f"{amount / 100:.2f} {str(data['currency']).upper()}"
    if "carrier" in data:
        found["carrier_name"] = str(data["carrier"]).upper()
    return found


@dataclass(frozen=True, slots=True)
class Contact:
    """Where an order's customer is reached."""

    email: str | None
    phone: str | None

    def channels(self) -> list[tuple[str, str, str]]:
        """(channel, provider, recipient) for each way this contact can be reached."""
        found = []
        if self.email:
            found.append(("email", "sendgrid", self.email))
        if self.phone:
            found.append(("sms", "twilio", self.phone))
        return found


def _contact_in(event: Mapping[str, Any]) -> Contact | None:
    data = event.get("data") or {}
    email, phone = data.get("email"), data.get("phone")
    return Contact(email, phone) if email or phone else None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a provider made of one message."""

    status: str  # sent | failed
    provider_message_id: str | None = None
    error: str | None = None


class NotifySimulator(Simulator):
    """Consumes order, payment and shipment events; records every delivery attempt."""

    component = "notify-svc"
    metadata = MetaData()
    notifications = Table(
        "notifications",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),  # newest first
        Column("notification_id", String(40), nullable=False, unique=True),
        Column("event_id", String(40), nullable=False),
        Column("event_type", String(40), nullable=False),
        Column("order_id", String(40), nullable=False, index=True),
        Column("channel", String(8), nullable=False),
        Column("recipient", String(320), nullable=False),
        Column("template", String(64), nullable=False),
        Column("provider", String(16), nullable=False),
        Column("provider_message_id", String(128)),
        Column("status", String(8), nullable=False),
        Column("error", Text),
        Column("created_at", String(40), nullable=False),
        UniqueConstraint("event_id", "channel", name="uq_notifications_event_channel"),
    )
    contacts = Table(
        "contacts",
        metadata,
        Column("order_id", String(40), primary_key=True),
        Column("email", String(320)),
        Column("phone", String(20)),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(40), nullable=False, unique=True),
        Column("order_id", String(40), nullable=False, index=True),
        Column("event", JSON, nullable=False),
    )
    # Built once (see inventory-svc): the statements of every event handled.
    _CONTACT_OF = select(contacts).where(contacts.c.order_id == bindparam("w_order_id"))
    _INBOX_OF = (
        select(inbox).where(inbox.c.order_id == bindparam("w_order_id")).order_by(inbox.c.seq)
    )
    _DELIVERED = delete(inbox).where(inbox.c.seq == bindparam("w_seq"))
    _KEPT = select(inbox.c.order_id).distinct()
    _RECORD = update(notifications).where(
        notifications.c.notification_id == bindparam("w_notification_id")
    )

    def __init__(self, ctx: SimulatorContext):
        super().__init__(ctx)
        self.settings = {**DEFAULT_SETTINGS, **ctx.settings}
        self._handling = KeyedLocks()  # per order id, see the module doc
        self._upsert_contact = upsert_into(ctx.db, self.contacts, "order_id")
        # The orders with events in the inbox: read at start, kept here after. Only this
        # process writes the database (PostgreSQL's are held by their owner's lock), and
        # looking in the inbox for every event that brings a contact was a round trip
        # of two events per order (issue 15).
        self._kept: set[str] = set()
        # The contacts of the newest orders, as the database has them (same reason): an
        # order's events come close together, and reading its contact for each event
        # that carries none, or storing again the one each confirmation repeats, was
        # two round trips per order. Bounded: memory stays flat however long the run.
        self._contacts: LRUCache[str, Contact] = LRUCache(CONTACTS_IN_MEMORY)

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "getHealth": health_behaviour(self.component),
            "listNotifications": self.list_notifications,
            "getNotification": self.get_notification,
        }

    async def reset(self) -> None:
        await super().reset()
        self._kept.clear()
        self._contacts.clear()
        await self._seed_history()

    async def _seed_history(self) -> None:
        """The confirmation mail of each of the seed data's orders (specs/seed.toml)."""
        if not self.ctx.settings.get("seed_orders", True):
            return
        users = {user["user_id"]: user for user in load_seed().users}
        seeded = [(order, users[order["user_id"]]) for order in load_seed().orders]
        mails = [
            {
                "notification_id": order["notification_id"],
                "event_id": "evt_Oc5Nf2Rj8Tb",
                "event_type": "order.confirmed",
                "order_id": order["order_id"],
                "channel": "email",
                "recipient": user["email"],
                "template": "order_confirmed",
                "provider": "sendgrid",
                "provider_message_id": "W8nYp2ZxQ4e1mV7s3kL9bA",
                "status": "sent",
                "error": None,
                "created_at": order["updated_at"],
            }
            for order, user in seeded
        ]
        contacts = [
            {"order_id": order["order_id"], "email": user["email"], "phone": user["phone"]}
            for order, user in seeded
        ]
        async with self.ctx.db.begin() as conn:
            await add_missing_rows(conn, self.notifications, mails, "notification_id")
            await add_missing_rows(conn, self.contacts, contacts, "order_id")

    async def start(self) -> None:
        await super().start()
        await self._seed_history()
        async with self.ctx.db.connect() as conn:  # a kept database's inbox
            self._kept = set((await conn.scalars(self._KEPT)).all())
        if self.ctx.bus is not None:
            for topic in TOPICS:
                await self.ctx.bus.subscribe(topic, GROUP, self.handle, concurrent=True)

    # --- consuming -----------------------------------------------------------------------

    async def handle(self, record: Record) -> None:
        """Remember a contact the event carries, put the event in the inbox if it
        notifies, and deliver the order's inbox once its contact is known."""
        async with self._handling.hold(str(record.value["order_id"])):
            await self._handle(record.value)

    async def _handle(self, event: Mapping[str, Any]) -> None:
        order_id = str(event["order_id"])
        contact, notifies = _contact_in(event), event["type"] in TEMPLATES
        if contact is not None:
            await self._remember(order_id, contact)
            await self._deliver_inbox(order_id, contact)  # what waited for the contact
        elif notifies:
            contact = await self._contact(order_id)
        if not notifies:
            return  # order.placed, payment.succeeded: nobody to tell
        if contact is None:
            await self._keep(order_id, event)  # until an event brings the contact
        else:
            await self._notify(event, contact)

    async def _remember(self, order_id: str, contact: Contact) -> None:
        """Add the order's contact, or update it (unless it is the one stored already)."""
        if self._contacts.get(order_id) == contact:
            return
        row = {"order_id": order_id, "email": contact.email, "phone": contact.phone}
        await self.ctx.db.execute(self._upsert_contact, row)
        self._contacts[order_id] = contact

    async def _contact(self, order_id: str) -> Contact | None:
        if (known := self._contacts.get(order_id)) is not None:
            return known
        async with self.ctx.db.connect() as conn:
            row = (await conn.execute(self._CONTACT_OF, {"w_order_id": order_id})).first()
        if row is None:
            return None
        self._contacts[order_id] = contact = Contact(row.email, row.phone)
        return contact

    async def _keep(self, order_id: str, event: Mapping[str, Any]) -> None:
        """Into the inbox; an event already there (a redelivery) is kept once."""
        row = {"event_id": event["id"], "order_id": order_id, "event": dict(event)}
        with contextlib.suppress(IntegrityError):
            await self.ctx.db.execute(insert_into(self.inbox), row)
        self._kept.add(order_id)

    async def _deliver_inbox(self, order_id: str, contact: Contact) -> None:
        if order_id not in self._kept:
            return
        async with self.ctx.db.connect() as conn:
            waiting = (await conn.execute(self._INBOX_OF, {"w_order_id": order_id})).all()
        for row in waiting:
            await self._notify(row.event, contact)
            await self.ctx.db.execute(self._DELIVERED, {"w_seq": row.seq})
        self._kept.discard(order_id)  # not before: a failed delivery is tried again

    async def _notify(self, event: Mapping[str, Any], contact: Contact) -> None:
        """Each channel of ``contact`` at most once per event: claim, send, record.

        One channel after the other: side by side (a task each), the embedded mesh's
        mails fell seconds behind under load -- its in-process calls and database rarely
        wait, so a channel's steps ran in one go, where each task waited its turn on the
        busy loop (issue 15)."""
        template = TEMPLATES[event["type"]]
        for channel, provider, recipient in contact.channels():
            notification_id = await self._claim(event, template, channel, provider, recipient)
            if notification_id is None:
                continue  # handled by an earlier delivery of this event
            if channel == "email":
                outcome = await self._send_email(event, template, recipient, notification_id)
            else:
                outcome = await self._send_sms(event, template, recipient)
            await self._record(notification_id, outcome)

    async def _claim(
        self,
        event: Mapping[str, Any],
        template: Template,
        channel: str,
        provider: str,
        recipient: str,
    ) -> str | None:
        """Insert the notification before sending (see the module doc); None when this
        event was already claimed on this channel."""
        notification_id = new_id("ntf")
        row = {
            "notification_id": notification_id,
            "event_id": event["id"],
            "event_type": event["type"],
            "order_id": event["order_id"],
            "channel": channel,
            "recipient": recipient,
            "template": template.name,
            "provider": provider,
            "provider_message_id": None,
            "status": "failed",
            "error": INTERRUPTED,
            "created_at": rfc3339(self.ctx.clock()),
        }
        try:
            await self.ctx.db.execute(insert_into(self.notifications), row)
        except IntegrityError:
            return None
        return notification_id

    async def _record(self, notification_id: str, outcome: Outcome) -> None:
        await self.ctx.db.execute(
            self._RECORD,
            {
                "w_notification_id": notification_id,
                "status": outcome.status,
                "provider_message_id": outcome.provider_message_id,
                "error": outcome.error,
            },
        )

    # --- providers -----------------------------------------------------------------------

    async def _send_email(
        self, event: Mapping[str, Any], template: Template, recipient: str, notification_id: str
    ) -> Outcome:
        subject, text = template.render(event)
        mail = {
            "personalizations": [{"to": [{"email": recipient}], "subject": subject}],
            "from": {
                "email": self.settings["email_from"],
                "name": self.settings["email_from_name"],
            },
            "content": [{"type": "text/plain", "value": text}],
            "categories": [template.name.replace("_", "-")],
            "custom_args": {
                "order_id": event["order_id"],
                "event_id": event["id"],
                "notification_id": notification_id,
            },
        }
        headers = {"Authorization": f"Bearer {self.settings['sendgrid_api_key']}"}
        response = await self._post("sendgrid", "/v3/mail/send", json=mail, headers=headers)
        if isinstance(response, Outcome):
            return response
        if response.status_code == 202:
            return Outcome("sent", response.headers.get("x-message-id") or None)
        return Outcome("failed", error=_sendgrid_error(response))

    async def _send_sms(
        self, event: Mapping[str, Any], template: Template, recipient: str
    ) -> Outcome:
        _, text = template.render(event)
        sid = self.settings["twilio_account_sid"]
        form = {
            "To": recipient,
            "From": self.settings["twilio_from"],
            "Body": f"{self.settings['email_from_name']}: {text}",
        }
        response = await self._post(
            "twilio",
            f"/2010-04-01/Accounts/{sid}/Messages.json",
            data=form,
            auth=httpx.BasicAuth(sid, self.settings["twilio_auth_token"]),
        )
        if isinstance(response, Outcome):
            return response
        body = _json_object(response)
        if response.status_code == 201 and isinstance(body.get("sid"), str):
            return Outcome("sent", body["sid"])
        return Outcome("failed", error=_twilio_error(response, body))

    async def _post(
        self, provider: str, url: str, *, auth: httpx.Auth | None = None, **options: Any
    ) -> httpx.Response | Outcome:
        """POST to an external provider, without the internal ``X-Service-Token`` the
        peer clients carry (a platform credential must not leave the platform); a
        provider that cannot be reached is a failed outcome."""
        try:
            client = self.ctx.peers[provider]
            if "x-service-token" not in client.headers:  # nothing to strip (a hosted stub's)
                return await client.request("POST", url, auth=auth, **options)
            request = client.build_request("POST", url, **options)
            request.headers.pop("x-service-token", None)
            return await client.send(request, auth=auth)
        except (LookupError, httpx.HTTPError) as exc:
            return Outcome("failed", error=f"{provider} could not be reached: {exc!r}")

    # --- the read API --------------------------------------------------------------------

    async def list_notifications(self, req: ValidRequest) -> StubResponse:
        query = req.params["query"]
        table = self.notifications
        statement = select(table)
        for name in ("order_id", "channel"):
            if name in query:
                statement = statement.where(table.c[name] == query[name])
        paged = keyset_page(req, statement, table.c.seq, int, newest_first=True)
        if paged is None:
            return invalid_cursor(req)
        statement, limit = paged
        async with self.ctx.db.connect() as conn:
            rows = (await conn.execute(statement)).all()
        page, next_cursor = page_of(rows, limit, lambda row: {"seq": row.seq})
        items = [_public(row) for row in page]
        return json_response(200, {"items": items, "next_cursor": next_cursor})

    async def get_notification(self, req: ValidRequest) -> StubResponse:
        notification_id = req.params["path"]["notificationId"]
        table = self.notifications
        async with self.ctx.db.connect() as conn:
            row = (
                await conn.execute(select(table).where(table.c.notification_id == notification_id))
            ).first()
        if row is None:
            return not_found(req, f"Notification {notification_id}")
        return json_response(200, _public(row))


def _public(row: Row[Any]) -> dict[str, Any]:
    return {name: row._mapping[name] for name in NOTIFICATION_FIELDS}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _sendgrid_error(response: httpx.Response) -> str:
    """``SendGrid 401: The provided authorization grant is invalid, expired, or revoked``."""
    errors = _json_object(response).get("errors")
    messages = [str(e.get("message")) for e in errors or [] if isinstance(e, dict)]
    return f"SendGrid {response.status_code}: " + ("; ".join(messages) or response.text)


def _twilio_error(response: httpx.Response, body: Mapping[str, Any]) -> str:
    """``Twilio error 21211: The 'To' number ... is not a valid phone number.`` (the form
    of notify-svc's own examples)."""
    if "code" in body:
        return f"Twilio error {body['code']}: {body.get('message')}"
    return f"Twilio {response.status_code}: {response.text}"
