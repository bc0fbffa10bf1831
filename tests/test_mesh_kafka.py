"""The mesh on a real broker: ``kafka="local"`` starts Tansu on loopback, the services'
events travel through it, and stopping the mesh stops the broker.

One test, since a Tansu run costs a broker start and a consumer-group join (1-2 s); every
wait in it is bounded. The order flow and its helpers are those of ``mesh_flow.py``.
"""

from __future__ import annotations

import socket

import pytest

from ecom_harness.harness.mesh import Mesh, MeshOptions
from ecom_harness.stubs import KafkaBus
from mesh_flow import ORDER_EVENTS, delivered_events, place_order, published, signed_in

KAFKA_WAIT = 20.0  # seconds: publication, group delivery and the handlers' own calls


def refuses_connections(bootstrap_servers: str) -> bool:
    host, port = bootstrap_servers.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.timeout(90)
async def test_an_order_s_events_travel_through_the_local_broker() -> None:
    async with Mesh(MeshOptions(kafka="local")) as mesh:
        assert isinstance(mesh.bus, KafkaBus) and mesh.bootstrap_servers is not None
        broker = mesh.bootstrap_servers
        assert broker.startswith("127.0.0.1:") and not refuses_connections(broker)
        async with signed_in(mesh) as client:
            placed = await place_order(client, "kafka-1")
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        events = await delivered_events(mesh, order_id, timeout=KAFKA_WAIT)
        assert published(events) == ORDER_EVENTS  # notify-svc and catalog-svc received
        mails = mesh.journal.interactions("notify-svc->sendgrid")
        subjects = {m.request_body["personalizations"][0]["subject"] for m in mails}
        assert f"Your order {order_id} is confirmed" in subjects
        assert {(m.operation_id, m.status) for m in mails} == {("sendMail", 202)}
    assert refuses_connections(broker)  # the broker the mesh started is gone
