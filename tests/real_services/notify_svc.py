"""notify-svc, written by its own team from specs/openapi/notify-svc.yaml,
specs/asyncapi/commerce-events.yaml and the SendGrid and Twilio subsets, nothing else.

Fed by Kafka only (group ``notify-svc`` on ``orders``, ``payments``, ``shipments``).
Of all events only ``order.confirmed`` names the customer (``email``, ``phone``), so the
contact is remembered per order and an event about an order whose contact is not known
yet waits in the inbox until it is. Every notification is recorded; one per event and
channel (a redelivered event sends nothing twice).

Configured from its environment only (``ecom-harness env notify-svc``): ``PORT``,
``SENDGRID_URL``, ``TWILIO_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``. The
provider credentials are the providers' test credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import (
    Problem,
    database_engine,
    health,
    new_id,
    now,
    require_service_token,
    within_shutdown,
)

logger = logging.getLogger(__name__)

COMPONENT = "notify-svc"
TOPICS = ("orders", "payments", "shipments")
SENDGRID_KEY = "SG.notify-svc-test-key"
MAIL_FROM = {"email": "orders@shop.example.com", "name": "Example Shop"}
TWILIO_SID = "AC" + "0123456789abcdef" * 2  # the test Account SID
TWILIO_TOKEN = "notify-svc-test-token"
SMS_FROM = "+15005550006"  # Twilio's magic test sender that passes validation

# event type -> (template, subject, channels)
TEMPLATES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "order.confirmed": ("order_confirmed", "Your order {order_id} is confirmed", ("email", "sms")),
    "shipment.scheduled": ("shipment_scheduled", "Your order {order_id} is on its way", ("sms",)),
    "payment.failed": ("payment_failed", "The payment for order {order_id} failed", ("email",)),
    "payment.refunded": ("payment_refunded", "Order {order_id} was refunded", ("email",)),
    "order.cancelled": ("order_cancelled", "Order {order_id} was cancelled", ("email",)),
}

metadata = MetaData()
notifications = Table(
    "notifications",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(40), unique=True, nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("order_id", String(40), index=True, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("template", String(64), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_message_id", String(64)),
    Column("status", String(8), nullable=False),
    Column("error", String(500)),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("event_id", "channel"),
)
contacts = Table(
    "contacts",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("phone", String(20)),
)
inbox = Table(  # events waiting for their order's contact
    "inbox",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("order_id", String(40), index=True, nullable=False),
    Column("event", JSON, nullable=False),
)
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


class Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """Sets ``event`` once the group has assigned this consumer its partitions."""

    def __init__(self, event: asyncio.Event):
        self.event = event

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.event.set()


class NotifySvc:
    """The service; :attr:`app` is its ASGI application (the read API)."""

    session_timeout_ms = 2_000  # a short session: the group forms in seconds
    heartbeat_interval_ms = 200

    def __init__(self, environ: Mapping[str, str]):
        self.sendgrid = environ["SENDGRID_URL"]
        self.twilio = environ["TWILIO_URL"]
        self.bootstrap_servers = environ["KAFKA_BOOTSTRAP_SERVERS"]
        self.db = database_engine(environ["DATABASE_URL"])
        self.providers = httpx.AsyncClient(timeout=10.0)
        self.handling = asyncio.Lock()  # one event at a time
        self._consuming: asyncio.Task[None] | None = None
        self.joined = asyncio.Event()  # set when the group first assigns us partitions
        guarded = require_service_token
        self.app = Starlette(
            routes=[
                Route("/health", health(COMPONENT)),
                Route("/notifications", guarded(self.list_notifications)),
                Route("/notifications/{notification_id}", guarded(self.get_notification)),
            ],
            lifespan=self.lifespan,
        )

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        async with self.db.begin() as conn:
            await conn.run_sync(metadata.create_all)
        self._consuming = asyncio.create_task(self.consume())
        await self.joined.wait()  # ready (and listening) once it is in its group
        try:
            yield
        finally:
            self._consuming.cancel()
            await asyncio.gather(self._consuming, return_exceptions=True)
            await self.providers.aclose()
            await self.db.dispose()

    # --- Kafka -------------------------------------------------------------------------------

    async def consume(self) -> None:
        """Join the group (retrying until the broker is up) and handle every record."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=COMPONENT,
                client_id=COMPONENT,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=self.heartbeat_interval_ms,
            )
            try:
                await consumer.start()
            except (KafkaError, OSError):
                await consumer.stop()
                await asyncio.sleep(0.2)
                continue
            consumer.subscribe(TOPICS, listener=Joined(self.joined))
            try:
                async for record in consumer:
                    await self.handle_record(record.value)
                    await consumer.commit()
            except KafkaError:
                logger.exception("consumer failed; joining again")
            finally:
                await within_shutdown(consumer.stop())

    async def handle_record(self, raw: bytes | None) -> None:
        try:
            found = json.loads(raw or b"")
        except ValueError:
            return  # not ours to judge: skip what cannot be read
        if isinstance(found, dict) and found.get("type") in (
            *TEMPLATES,
            "order.placed",
            "payment.succeeded",
        ):
            async with self.handling:
                await self.handle(found)

    async def handle(self, event: dict[str, Any]) -> None:
        """Keep the event; once its order's contact is known, send everything waiting."""
        order_id = event["order_id"]
        async with self.db.begin() as conn:
            if event["type"] == "order.confirmed":
                data = event["data"]
                if (
                    await conn.scalar(
                        select(contacts.c.order_id).where(contacts.c.order_id == order_id)
                    )
                    is None
                ):
                    await conn.execute(
                        contacts.insert().values(
                            order_id=order_id, email=data["email"], phone=data.get("phone")
                        )
                    )
            if event["type"] in TEMPLATES:
                exists = await conn.scalar(
                    select(inbox.c.event_id).where(inbox.c.event_id == event["id"])
                )
                if exists is None:
                    await conn.execute(
                        inbox.insert().values(event_id=event["id"], order_id=order_id, event=event)
                    )
            contact = (
                await conn.execute(select(contacts).where(contacts.c.order_id == order_id))
            ).first()
            if contact is None:
                return
            waiting = [
                row.event
                for row in await conn.execute(select(inbox).where(inbox.c.order_id == order_id))
            ]
            await conn.execute(inbox.delete().where(inbox.c.order_id == order_id))
        for pending in waiting:
            await self.notify(pending, contact.email, contact.phone)

    async def notify(self, event: dict[str, Any], email: str, phone: str | None) -> None:
        template, subject, channels = TEMPLATES[event["type"]]
        text = subject.format(order_id=event["order_id"])
        for channel in channels:
            if channel == "sms" and phone is None:
                continue
            recipient = email if channel == "email" else str(phone)
            claimed = await self.claim(event, channel, recipient, template)
            if claimed is None:
                continue  # sent before: a redelivered event
            if channel == "email":
                status, message_id, error = await self.send_email(email, text, event, claimed)
            else:
                status, message_id, error = await self.send_sms(str(phone), text)
            async with self.db.begin() as conn:
                await conn.execute(
                    notifications.update()
                    .where(notifications.c.notification_id == claimed)
                    .values(status=status, provider_message_id=message_id, error=error)
                )

    async def claim(
        self, event: dict[str, Any], channel: str, recipient: str, template: str
    ) -> str | None:
        """Record the attempt before calling the provider; None when it exists already."""
        notification_id = new_id("ntf")
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    notifications.insert().values(
                        notification_id=notification_id,
                        event_id=event["id"],
                        event_type=event["type"],
                        order_id=event["order_id"],
                        channel=channel,
                        recipient=recipient,
                        template=template,
                        provider="sendgrid" if channel == "email" else "twilio",
                        status="failed",
                        error="interrupted before the provider answered",
                        created_at=now(),
                    )
                )
        except IntegrityError:
            return None
        return notification_id

    def mail(
        self, to: str, subject: str, event: dict[str, Any], notification_id: str
    ) -> dict[str, Any]:
        """The SendGrid v3 mail/send body; ``custom_args`` (echoed in SendGrid's event
        webhooks) tie its delivery events to the order, event and notification."""
        return {
            "personalizations": [{"to": [{"email": to}], "subject": subject}],
            "from": MAIL_FROM,
            "content": [{"type": "text/plain", "value": subject + "."}],
            "categories": [event["type"].replace(".", "-")],
            "custom_args": {
                "order_id": event["order_id"],
                "event_id": event["id"],
                "notification_id": notification_id,
            },
        }

    def sendgrid_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SENDGRID_KEY}"}

    async def send_email(
        self, to: str, subject: str, event: dict[str, Any], notification_id: str
    ) -> tuple[str, str | None, str | None]:
        try:
            answer = await self.providers.post(
                self.sendgrid + "/v3/mail/send",
                json=self.mail(to, subject, event, notification_id),
                headers=self.sendgrid_headers(),
            )
        except httpx.TransportError as lost:
            return "failed", None, f"SendGrid did not answer: {lost}"
        if answer.status_code == 202:
            return "sent", answer.headers.get("x-message-id") or None, None
        return "failed", None, f"SendGrid answered {answer.status_code}: {answer.text[:300]}"

    async def send_sms(self, to: str, text: str) -> tuple[str, str | None, str | None]:
        try:
            answer = await self.providers.post(
                f"{self.twilio}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                data={"To": to, "From": SMS_FROM, "Body": text},
                auth=(TWILIO_SID, TWILIO_TOKEN),
            )
        except httpx.TransportError as lost:
            return "failed", None, f"Twilio did not answer: {lost}"
        if answer.status_code == 201:
            return "sent", answer.json().get("sid"), None
        return "failed", None, f"Twilio answered {answer.status_code}: {answer.text[:300]}"

    # --- the read API ------------------------------------------------------------------------

    async def list_notifications(self, request: Request) -> Response:
        query = select(notifications).order_by(notifications.c.seq.desc())
        params = request.query_params
        if "order_id" in params:
            query = query.where(notifications.c.order_id == params["order_id"])
        if "channel" in params:
            query = query.where(notifications.c.channel == params["channel"])
        if "cursor" in params:
            query = query.where(notifications.c.seq < int(params["cursor"]))
        limit = int(params.get("limit", "20"))
        async with self.db.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query.limit(limit + 1))]
        page = rows[:limit]
        cursor = str(page[-1]["seq"]) if len(rows) > limit else None
        return JSONResponse({"items": [notification_body(r) for r in page], "next_cursor": cursor})

    async def get_notification(self, request: Request) -> Response:
        wanted = request.path_params["notification_id"]
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(notifications).where(notifications.c.notification_id == wanted)
                )
            ).first()
        if row is None:
            raise Problem(404, "not-found", "Not found", f"Notification {wanted} does not exist.")
        return JSONResponse(notification_body(dict(row._mapping)))


def notification_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in NOTIFICATION_FIELDS}
