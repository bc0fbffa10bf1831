"""A corpus of broken specs for ``specs lint``.

Each case breaks one thing in a writable copy of the shipped specs and names the exact
file, JSON pointer, rule and (a piece of) the message the lint must report for it: the
spot a person would go to fix the mistake. Every case also checks that the lint did not
fail internally and that every pointer it reported exists in the broken copy.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.specs import LintReport, lint_specs

Mutation = Callable[[Path], None]  # receives the root of the spec copy
Data = Any  # a parsed YAML document

SENDGRID = "openapi/external/sendgrid.yaml"
USER_SVC = "openapi/user-svc.yaml"
ORDER_SVC = "openapi/order-svc.yaml"
PAYMENT_SVC = "openapi/payment-svc.yaml"
INVENTORY_SVC = "openapi/inventory-svc.yaml"
EVENTS = "asyncapi/commerce-events.yaml"
TOPOLOGY = "topology.yaml"

MAIL_SEND = "/paths/~1v3~1mail~1send/post"
GET_USER = "/paths/~1users~1{userId}/get"
JSON_BODY = "content/application~1json"
MAIL_REQUEST = "/components/schemas/MailSendRequest"
SEND_ORDERS = "/operations/orderSvcSendOrders"

_SHIPPED_EDGES = yaml.safe_load((REPO / "specs" / TOPOLOGY).read_text())["edges"]
NEW_EDGE = f"/edges/{len(_SHIPPED_EDGES)}"  # where an appended edge lands


def edge_at(source: str, target: str) -> str:
    """The pointer of the shipped edge ``source -> target``."""
    for index, edge in enumerate(_SHIPPED_EDGES):
        if (edge["from"], edge["to"]) == (source, target):
            return f"/edges/{index}"
    raise LookupError(f"no edge {source} -> {target} in the shipped topology")


# --- mutations -------------------------------------------------------------------------------


def edit_yaml(rel: str, change: Callable[[Data], object]) -> Mutation:
    """Load ``rel`` from the copy, let ``change`` modify the data in place, dump it back."""

    def mutate(root: Path) -> None:
        path = root / rel
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")

    return mutate


def edit_text(rel: str, change: Callable[[str], str]) -> Mutation:
    def mutate(root: Path) -> None:
        path = root / rel
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")

    return mutate


def write_bytes(rel: str, content: bytes) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).write_bytes(content)

    return mutate


def delete(rel: str) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).unlink()

    return mutate


# Navigation inside parsed documents, so the table reads as "what changes where".


def ref(target: str) -> dict[str, str]:
    return {"$ref": f"#/components/{target}"}


def mail_send(doc: Data) -> Data:
    return doc["paths"]["/v3/mail/send"]["post"]


def mail_responses(doc: Data) -> Data:
    return mail_send(doc)["responses"]


def mail_example(doc: Data, name: str) -> Data:
    """The value of a named example of SendGrid's mail-send request body."""
    media = mail_send(doc)["requestBody"]["content"]["application/json"]
    return media["examples"][name]["value"]


def schema(doc: Data, name: str) -> Data:
    return doc["components"]["schemas"][name]


def mail_property(doc: Data, name: str) -> Data:
    return schema(doc, "MailSendRequest")["properties"][name]


def close_content(doc: Data, required: object) -> None:
    """Make SendGrid's ``Content`` schema closed and replace its ``required``."""
    schema(doc, "Content").update(additionalProperties=False, required=required)


def get_user(doc: Data) -> Data:
    return doc["paths"]["/users/{userId}"]["get"]


def user_example(doc: Data) -> Data:
    return get_user(doc)["responses"]["200"]["content"]["application/json"]["examples"]["user"]


def path_parameter(name: str, schema: Data) -> Data:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def edge(doc: Data, source: str, target: str) -> Data:
    return next(e for e in doc["edges"] if (e["from"], e["to"]) == (source, target))


def remove_edge(doc: Data, source: str, target: str) -> None:
    doc["edges"].remove(edge(doc, source, target))


def add_edge(doc: Data, source: str, target: str, protocol: str, **more: object) -> None:
    doc["edges"].append({"from": source, "to": target, "protocol": protocol, **more})


def rename_component(doc: Data, old: str, new: str) -> None:
    doc["components"][new] = doc["components"].pop(old)


def operation(doc: Data, name: str) -> Data:
    return doc["operations"][name]


def message(doc: Data, name: str) -> Data:
    return doc["components"]["messages"][name]


# --- the corpus --------------------------------------------------------------------------------

# An expectation reads like the lint's own output: "FILE#POINTER [RULE] PIECE OF THE MESSAGE",
# with FILE relative to the spec root.
_EXPECTATION = re.compile(r"(?P<file>[^#]+)#(?P<pointer>\S*) \[(?P<rule>[^\]]+)\] (?P<message>.+)")


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    mutate: Mutation
    file: str
    pointer: str
    rule: str
    message: str  # a piece of the message
    unexpected: str  # a piece of message no diagnostic may have


def case(id: str, mutate: Mutation, expect: str, *, unexpected: str = "") -> Case:
    parsed = _EXPECTATION.fullmatch(expect)
    assert parsed, f"malformed expectation {expect!r}"
    return Case(id, mutate, *parsed.group("file", "pointer", "rule", "message"), unexpected)


CASES = [
    # --- files that cannot be read as a spec ---------------------------------------------------
    case(
        "yaml-syntax-error",
        edit_text(SENDGRID, lambda t: "x-a: b: c\n" + t),
        f"{SENDGRID}# [yaml] line 1, column 7: mapping values are not allowed",
    ),
    case(
        "yaml-duplicate-key",
        edit_text(SENDGRID, lambda t: t.replace("  version: 3.0.0\n", "  version: 3.0.0\n" * 2)),
        f"{SENDGRID}# [yaml-duplicate-key] duplicate key 'version'",
    ),
    case(
        "yaml-duplicate-key-position",
        edit_text(SENDGRID, lambda t: "x-a: 1\nx-a: 2\n" + t),
        f"{SENDGRID}# [yaml-duplicate-key] line 2, column 1: duplicate key 'x-a'",
    ),
    case(
        "top-level-list",
        write_bytes(SENDGRID, b"- openapi: 3.1.0\n- paths: {}\n"),
        f"{SENDGRID}# [yaml] expected a mapping at the top level, found a list",
    ),
    case(
        "empty-file",
        write_bytes(SENDGRID, b""),
        f"{SENDGRID}# [yaml] expected a mapping at the top level, found an empty file",
    ),
    case(
        "not-utf8",
        write_bytes(SENDGRID, "openapi: 3.1.0\ninfo: caf\xe9\n".encode("latin-1")),
        f"{SENDGRID}# [read] not UTF-8 text (byte 24)",
    ),
    case(
        "unknown-document-kind",
        write_bytes(SENDGRID, b"title: SendGrid\nversion: 3\n"),
        f"{SENDGRID}# [kind] not an OpenAPI, AsyncAPI or topology document",
    ),
    case(
        "unreadable-spec-named-by-topology",
        write_bytes(SENDGRID, b""),
        f"{TOPOLOGY}#/components/sendgrid/spec [topology-spec] "
        f"spec file '{SENDGRID}' is missing or unreadable",
    ),
    case(
        "missing-spec-file",
        delete(USER_SVC),
        f"{TOPOLOGY}#/components/user-svc/spec [topology-spec] "
        f"spec file '{USER_SVC}' is missing or unreadable",
    ),
    # --- OpenAPI: structure ----------------------------------------------------------------------
    case(
        "openapi-unsupported-version",
        edit_yaml(SENDGRID, lambda d: d.update(openapi="2.0")),
        f"{SENDGRID}#/openapi [openapi-version] unsupported OpenAPI version '2.0'",
    ),
    case(
        "openapi-missing-info",
        edit_yaml(SENDGRID, lambda d: d.pop("info")),
        f"{SENDGRID}# [openapi] info",  # the validator's quoting varies: "info" or 'info'
    ),
    case(
        "openapi-description-not-a-string",
        edit_yaml(SENDGRID, lambda d: mail_responses(d)["202"].update(description=42)),
        f"{SENDGRID}#{MAIL_SEND}/responses/202/description [openapi] 42 is not of type",
    ),
    case(
        "openapi-path-parameter-not-in-path",
        edit_yaml(SENDGRID, lambda d: mail_send(d).update(parameters=[path_parameter("x", {})])),
        f"{SENDGRID}#{MAIL_SEND} [openapi] Path parameter 'x' for 'post' operation",
    ),
    # --- OpenAPI: references ---------------------------------------------------------------------
    case(
        "dangling-ref-in-response",
        edit_yaml(SENDGRID, lambda d: mail_responses(d).update({"400": ref("responses/Bad")})),
        f"{SENDGRID}#{MAIL_SEND}/responses/400 [ref-dangling] "
        "dangling $ref '#/components/responses/Bad'",
    ),
    case(
        "dangling-ref-in-schema-property",
        edit_yaml(SENDGRID, lambda d: mail_property(d, "from").update(ref("schemas/Sender"))),
        f"{SENDGRID}#{MAIL_REQUEST}/properties/from [ref-dangling] "
        "dangling $ref '#/components/schemas/Sender': /components/schemas has no 'Sender'",
    ),
    case(
        "external-file-ref",
        edit_yaml(SENDGRID, lambda d: mail_property(d, "from").update({"$ref": "common.yaml#/A"})),
        f"{SENDGRID}#{MAIL_REQUEST}/properties/from [ref-external] "
        "$ref 'common.yaml#/A' points into another document",
    ),
    # --- OpenAPI: operations ---------------------------------------------------------------------
    case(
        "missing-operation-id",
        edit_yaml(SENDGRID, lambda d: mail_send(d).pop("operationId")),
        f"{SENDGRID}#{MAIL_SEND} [operation-id] POST /v3/mail/send has no operationId",
    ),
    case(
        "operation-id-not-camel-case",
        edit_yaml(SENDGRID, lambda d: mail_send(d).update(operationId="send_mail")),
        f"{SENDGRID}#{MAIL_SEND}/operationId [operation-id-case] 'send_mail' is not lowerCamelCase",
    ),
    case(
        "duplicate-operation-id",
        edit_yaml(
            USER_SVC, lambda d: d["paths"]["/sessions"]["post"].update(operationId="createUser")
        ),
        f"{USER_SVC}#/paths/~1sessions/post/operationId [operation-id-duplicate] "
        "duplicate operationId 'createUser' (first used at /paths/~1users/post)",
    ),
    # --- OpenAPI: examples -----------------------------------------------------------------------
    case(
        "request-example-breaks-schema",
        edit_yaml(
            SENDGRID, lambda d: mail_example(d, "orderConfirmation")["from"].update(email=42)
        ),
        f"{SENDGRID}#{MAIL_SEND}/requestBody/{JSON_BODY}/examples/orderConfirmation/value/from/email"
        ' [example-invalid] example breaks its schema: 42 is not of type "string"',
    ),
    case(
        "response-example-breaks-schema",
        edit_yaml(USER_SVC, lambda d: user_example(d)["value"].update(email=None)),
        f"{USER_SVC}#{GET_USER}/responses/200/{JSON_BODY}/examples/user/value/email"
        " [example-invalid] null is not of type",
    ),
    case(
        "shared-example-breaks-schema",
        edit_yaml(
            SENDGRID,
            lambda d: d["components"]["examples"]["MissingFrom"]["value"]["errors"][0].update(
                field=5
            ),
        ),
        f"{SENDGRID}#/components/examples/MissingFrom/value/errors/0/field"
        " [example-invalid] 5 is not of type",
    ),
    case(
        "response-without-named-example",
        edit_yaml(
            SENDGRID,
            lambda d: mail_responses(d)["400"]["content"]["application/json"].pop("examples"),
        ),
        f"{SENDGRID}#{MAIL_SEND}/responses/400/{JSON_BODY} [example-missing] "
        "response has no named example",
    ),
    # --- OpenAPI: schemas ------------------------------------------------------------------------
    case(
        "bare-object-schema",
        edit_yaml(
            SENDGRID, lambda d: schema(d, "Errors")["properties"].update(id={"type": "object"})
        ),
        f"{SENDGRID}#/components/schemas/Errors/properties/id [schema-bare-object] "
        "object schema describes no fields",
    ),
    case(
        "required-property-not-among-properties",
        edit_yaml(SENDGRID, lambda d: close_content(d, ["type", "value", "charset"])),
        f"{SENDGRID}#/components/schemas/Content/required [schema-required-unknown] "
        "required property 'charset' is not among the properties",
    ),
    case(
        "required-is-a-string",
        edit_yaml(SENDGRID, lambda d: close_content(d, "type")),
        f'{SENDGRID}#/components/schemas/Content/required [schema-invalid] is not of type "array"',
        unexpected="required property 't'",  # "type" walked letter by letter
    ),
    case(
        "invalid-regex-pattern",
        edit_yaml(SENDGRID, lambda d: mail_property(d, "template_id").update(pattern="^d-[0-9")),
        f"{SENDGRID}#{MAIL_REQUEST}/properties/template_id/pattern [schema-invalid] "
        '"^d-[0-9" is not a "regex"',
    ),
    case(
        "invalid-schema-type",
        edit_yaml(SENDGRID, lambda d: mail_property(d, "subject").update(type="strin")),
        f"{SENDGRID}#{MAIL_REQUEST}/properties/subject/type [schema-invalid] invalid JSON Schema",
    ),
    case(
        "invalid-inline-parameter-schema",
        edit_yaml(
            USER_SVC,
            lambda d: get_user(d).update(parameters=[path_parameter("userId", {"type": "strin"})]),
        ),
        f"{USER_SVC}#{GET_USER}/parameters/0/schema/type [schema-invalid] invalid JSON Schema",
    ),
    # --- OpenAPI against the topology ------------------------------------------------------------
    case(
        "x-component-not-the-topology-name",
        edit_yaml(SENDGRID, lambda d: d["info"].update({"x-component": "sendgrd"})),
        f"{SENDGRID}#/info/x-component [topology-component-name] "
        "info.x-component must be 'sendgrid'",
    ),
    case(
        "x-component-missing",
        edit_yaml(SENDGRID, lambda d: d["info"].pop("x-component")),
        f"{SENDGRID}#/info [topology-component-name] (found None)",
    ),
    # --- topology: structure ---------------------------------------------------------------------
    case(
        "topology-unknown-edge-key",
        edit_yaml(TOPOLOGY, lambda d: d["edges"][0].update(timeout=5)),
        f"{TOPOLOGY}#/edges/0 [topology-structure] 'timeout' was unexpected",
    ),
    case(
        "topology-bad-kind",
        edit_yaml(TOPOLOGY, lambda d: d["components"]["redis"].update(kind="kv-store")),
        f"{TOPOLOGY}#/components/redis/kind [topology-structure] 'kv-store' is not one of",
    ),
    case(
        "topology-edge-without-protocol",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "api-gateway", "user-svc").pop("protocol")),
        f"{TOPOLOGY}#{edge_at('api-gateway', 'user-svc')} [topology-structure] "
        "'protocol' is a required property",
    ),
    case(
        "topology-bad-component-name",
        edit_yaml(TOPOLOGY, lambda d: rename_component(d, "redis", "Redis_Cache")),
        f"{TOPOLOGY}#/components/Redis_Cache [topology-structure] 'Redis_Cache' does not match",
    ),
    # --- topology: architecture rules ------------------------------------------------------------
    case(
        "edge-from-external-provider",
        edit_yaml(TOPOLOGY, lambda d: add_edge(d, "stripe", "payment-svc", "https")),
        f"{TOPOLOGY}#{NEW_EDGE}/from [topology-external-edge] "
        "an edge never starts at an external provider ('stripe')",
    ),
    case(
        "client-edge-to-service",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "client", "api-gateway").update(to="order-svc")),
        f"{TOPOLOGY}#{edge_at('client', 'api-gateway')}/to [topology-client-edge] "
        "a client may only reach the gateway; 'order-svc' is a service",
    ),
    case(
        "edge-into-kafka-only-service",
        edit_yaml(
            TOPOLOGY,
            lambda d: add_edge(d, "order-svc", "notify-svc", "http", operations=["getHealth"]),
        ),
        f"{TOPOLOGY}#{NEW_EDGE}/to [topology-kafka-only] "
        "'notify-svc' is reached only through Kafka",
    ),
    case(
        "kafka-only-service-without-kafka-edge",
        edit_yaml(TOPOLOGY, lambda d: remove_edge(d, "notify-svc", "kafka")),
        f"{TOPOLOGY}#/components/notify-svc [topology-kafka-only] has no kafka edge",
    ),
    case(
        "external-edge-not-marked",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "payment-svc", "stripe").pop("external")),
        f"{TOPOLOGY}#{edge_at('payment-svc', 'stripe')} [topology-external-edge] "
        "edge to external provider 'stripe' must be marked 'external: true'",
    ),
    case(
        "external-flag-on-internal-edge",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "api-gateway", "user-svc").update(external=True)),
        f"{TOPOLOGY}#{edge_at('api-gateway', 'user-svc')}/external [topology-external-edge] "
        "'user-svc' is not an external provider",
    ),
    case(
        "two-services-share-a-database",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "order-svc", "order-db").update(to="user-db")),
        f"{TOPOLOGY}#{edge_at('order-svc', 'order-db')}/to [topology-database] "
        "database 'user-db' already belongs to 'user-svc'",
    ),
    case(
        "service-without-database",
        edit_yaml(TOPOLOGY, lambda d: remove_edge(d, "user-svc", "user-db")),
        f"{TOPOLOGY}#/components/user-svc [topology-database] "
        "service 'user-svc' must own exactly one database, has 0",
    ),
    case(
        "gateway-owns-a-database",
        edit_yaml(TOPOLOGY, lambda d: add_edge(d, "api-gateway", "order-db", "postgresql")),
        f"{TOPOLOGY}#{NEW_EDGE}/from [topology-database] "
        "only services own databases; 'api-gateway' is a gateway",
    ),
    case(
        "wrong-protocol-for-target",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "order-svc", "order-db").update(protocol="http")),
        f"{TOPOLOGY}#{edge_at('order-svc', 'order-db')}/protocol [topology-protocol] "
        "a database is reached over postgresql, not http",
    ),
    case(
        "duplicate-edge",
        edit_yaml(TOPOLOGY, lambda d: add_edge(d, "api-gateway", "redis", "redis")),
        f"{TOPOLOGY}#{NEW_EDGE} [topology-duplicate-edge] "
        f"duplicate edge api-gateway -> redis (redis); first at {edge_at('api-gateway', 'redis')}",
    ),
    case(
        "edge-to-unknown-component",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "api-gateway", "user-svc").update(to="account-svc")),
        f"{TOPOLOGY}#{edge_at('api-gateway', 'user-svc')}/to [topology-unknown-component] "
        "unknown component 'account-svc'",
    ),
    # --- topology against the specs --------------------------------------------------------------
    case(
        "service-without-spec",
        edit_yaml(TOPOLOGY, lambda d: d["components"]["catalog-svc"].pop("spec")),
        f"{TOPOLOGY}#/components/catalog-svc [topology-spec] a service needs a spec (openapi)",
    ),
    case(
        "spec-of-the-wrong-kind",
        edit_yaml(TOPOLOGY, lambda d: d["components"]["catalog-svc"].update(spec=EVENTS)),
        f"{TOPOLOGY}#/components/catalog-svc/spec [topology-spec] '{EVENTS}' is asyncapi",
    ),
    case(
        "http-edge-without-operations",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "api-gateway", "catalog-svc").pop("operations")),
        f"{TOPOLOGY}#{edge_at('api-gateway', 'catalog-svc')} [topology-edge-spec] "
        "a http edge must list the operations that travel on it",
    ),
    case(
        "edge-names-unknown-operation",
        edit_yaml(
            TOPOLOGY,
            lambda d: edge(d, "api-gateway", "user-svc")["operations"].append("deleteUser"),
        ),
        f"{TOPOLOGY}#{edge_at('api-gateway', 'user-svc')}/operations/4 [topology-edge-spec] "
        "'user-svc' has no operation 'deleteUser'",
    ),
    case(
        "kafka-edge-names-unknown-channel",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "order-svc", "kafka")["channels"].append("refunds")),
        f"{TOPOLOGY}#{edge_at('order-svc', 'kafka')}/channels/1 [topology-edge-spec] "
        "'kafka' has no channel 'refunds'",
    ),
    case(
        "kafka-edge-channel-without-operation",
        edit_yaml(TOPOLOGY, lambda d: edge(d, "catalog-svc", "kafka")["channels"].append("orders")),
        f"{TOPOLOGY}#{edge_at('catalog-svc', 'kafka')}/channels/1 [topology-edge-spec] "
        "'catalog-svc' has no operation on channel 'orders'",
    ),
    # --- AsyncAPI --------------------------------------------------------------------------------
    case(
        "asyncapi-unsupported-version",
        edit_yaml(EVENTS, lambda d: d.update(asyncapi="2.6.0")),
        f"{EVENTS}#/asyncapi [asyncapi-version] unsupported AsyncAPI version '2.6.0'",
    ),
    case(
        "asyncapi-info-without-version",
        edit_yaml(EVENTS, lambda d: d["info"].pop("version")),
        f"{EVENTS}#/info [asyncapi] 'version' is a required property",
    ),
    case(
        "asyncapi-invalid-action",
        edit_yaml(EVENTS, lambda d: operation(d, "orderSvcSendOrders").update(action="publish")),
        f"{EVENTS}#{SEND_ORDERS}/action [asyncapi-action] "
        "action 'publish' is neither 'send' nor 'receive'",
    ),
    case(
        "asyncapi-channel-not-a-channel-ref",
        edit_yaml(
            EVENTS,
            lambda d: operation(d, "orderSvcSendOrders").update(
                channel=ref("messages/orderPlaced")
            ),
        ),
        f"{EVENTS}#{SEND_ORDERS}/channel [asyncapi-channel-ref] "
        "channel must be a $ref to '#/channels/<id>'",
    ),
    case(
        "asyncapi-channel-ref-is-not-a-channel-id",
        edit_yaml(
            EVENTS,
            lambda d: operation(d, "orderSvcSendOrders").update(
                channel=ref("messages/orderPlaced")
            ),
        ),
        f"{EVENTS}#{SEND_ORDERS}/channel [asyncapi-channel-ref] channel must be a $ref",
        unexpected="uses channel 'orderPlaced'",
    ),
    case(
        "asyncapi-message-ref-outside-its-channel",
        edit_yaml(
            EVENTS,
            lambda d: operation(d, "orderSvcSendOrders")["messages"][0].update(
                {"$ref": "#/channels/payments/messages/paymentSucceeded"}
            ),
        ),
        f"{EVENTS}#{SEND_ORDERS}/messages/0 [asyncapi-message-ref] "
        "message must be a $ref into its channel's messages ('#/channels/orders/messages/<id>')",
    ),
    case(
        "asyncapi-operation-messages-not-a-list",
        edit_yaml(EVENTS, lambda d: operation(d, "orderSvcSendOrders").update(messages="orders")),
        f"{EVENTS}#{SEND_ORDERS}/messages [asyncapi] 'orders' is not of type 'array'",
    ),
    case(
        "asyncapi-message-without-receiver",
        edit_yaml(EVENTS, lambda d: operation(d, "notifySvcReceiveOrders")["messages"].pop(2)),
        f"{EVENTS}#/channels/orders/messages/orderCancelled [asyncapi-unrouted-message] "
        "message 'orderCancelled' on channel 'orders' has no receiver",
    ),
    case(
        "asyncapi-message-without-sender",
        edit_yaml(EVENTS, lambda d: operation(d, "orderSvcSendOrders")["messages"].pop(2)),
        f"{EVENTS}#/channels/orders/messages/orderCancelled [asyncapi-unrouted-message] "
        "message 'orderCancelled' on channel 'orders' has no sender",
    ),
    case(
        "asyncapi-dangling-message-ref",
        edit_yaml(
            EVENTS,
            lambda d: d["channels"]["orders"]["messages"]["orderPlaced"].update(
                ref("messages/orderPlace")
            ),
        ),
        f"{EVENTS}#/channels/orders/messages/orderPlaced [ref-dangling] "
        "/components/messages has no 'orderPlace'",
    ),
    case(
        "asyncapi-payload-schema-invalid",
        edit_yaml(
            EVENTS, lambda d: schema(d, "EventEnvelope")["properties"]["time"].update(type="strin")
        ),
        f"{EVENTS}#/components/schemas/EventEnvelope/properties/time/type [schema-invalid] "
        "invalid JSON Schema",
    ),
    case(
        "asyncapi-example-breaks-payload",
        edit_yaml(
            EVENTS,
            lambda d: message(d, "orderPlaced")["examples"][0]["payload"].update(order_id=42),
        ),
        f"{EVENTS}#/components/messages/orderPlaced/examples/0/payload/order_id [example-invalid] "
        "example breaks its payload schema: 42 is not of type",
    ),
    case(
        "asyncapi-unknown-x-component",
        edit_yaml(
            EVENTS,
            lambda d: operation(d, "orderSvcSendOrders").update({"x-component": "order-service"}),
        ),
        f"{EVENTS}#{SEND_ORDERS}/x-component [asyncapi-component] "
        "x-component must name the sending or receiving component (found 'order-service')",
    ),
    case(
        "asyncapi-channel-not-on-the-components-kafka-edge",
        edit_yaml(
            EVENTS,
            lambda d: operation(d, "orderSvcSendOrders").update({"x-component": "payment-svc"}),
        ),
        f"{EVENTS}#{SEND_ORDERS}/channel [asyncapi-component] "
        "'payment-svc' uses channel 'orders' but its kafka edge",
    ),  # --- one voice across documents, every answer documented, bounds ------------------------
    case(
        "shared-definition-drifts-in-one-document",
        edit_yaml(PAYMENT_SVC, lambda d: schema(d, "Amount").update(maximum=100)),
        f"{PAYMENT_SVC}#/components/schemas/Amount [shared-definition] "
        "shared definition 'Amount' differs from the copy in",
    ),
    case(
        "shared-definition-problem-loses-a-required-field",
        edit_yaml(ORDER_SVC, lambda d: schema(d, "Problem")["required"].remove("instance")),
        f"{ORDER_SVC}#/components/schemas/Problem [shared-definition] "
        "shared definition 'Problem' differs",
    ),
    case(
        "integer-without-format",
        edit_yaml(
            ORDER_SVC, lambda d: d["components"]["parameters"]["Limit"]["schema"].pop("format")
        ),
        f"{ORDER_SVC}#/components/parameters/Limit/schema [integer-bounds] "
        "integer without format int32 or int64",
    ),
    case(
        "integer-without-maximum",
        edit_yaml(
            INVENTORY_SVC,
            lambda d: schema(d, "SetStockRequest")["properties"]["on_hand"].pop("maximum"),
        ),
        f"{INVENTORY_SVC}#/components/schemas/SetStockRequest/properties/on_hand "
        "[integer-bounds] integer without a maximum",
    ),
    case(
        "integer-bound-outside-its-format",
        edit_yaml(
            EVENTS,
            lambda d: schema(d, "StockLine")["properties"]["quantity"].update(maximum=2**31),
        ),
        f"{EVENTS}#/components/schemas/StockLine/properties/quantity/maximum [integer-bounds] "
        "maximum 2147483648 is outside the range of int32",
    ),
    case(
        "engine-answer-415-undocumented",
        edit_yaml(ORDER_SVC, lambda d: d["paths"]["/orders"]["post"]["responses"].pop("415")),
        f"{ORDER_SVC}#/paths/~1orders/post/responses [engine-answers] "
        "does not document 415, which the engine answers because it takes a request body",
    ),
    case(
        "engine-answer-validation-status-undocumented",
        edit_yaml(USER_SVC, lambda d: get_user(d)["responses"].pop("422")),
        f"{USER_SVC}#{GET_USER}/responses [engine-answers] does not document 422",
    ),
    case(
        "engine-answer-401-undocumented",
        edit_yaml(
            ORDER_SVC, lambda d: d["paths"]["/orders/{orderId}"]["get"]["responses"].pop("401")
        ),
        f"{ORDER_SVC}#/paths/~1orders~1{{orderId}}/get/responses [engine-answers] "
        "does not document 401, which the engine answers because it requires credentials",
    ),
]


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cases]


# --- helpers -------------------------------------------------------------------------------


def _show(report: LintReport) -> str:
    return "\n".join(str(d) for d in report.diagnostics) or "(no diagnostics)"


def _assert_no_internal_error(report: LintReport) -> None:
    internal = [d for d in report.diagnostics if d.rule == "internal"]
    assert not internal, _show(report)


def _names_a_spot(data: Data, pointer: str) -> bool:
    """Whether an RFC 6901 pointer leads to a node of ``data``, or names a missing member
    of a mapping that exists (as "add this key here" diagnostics do)."""
    node = data
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        if isinstance(node, dict):
            if token in node:
                node = node[token]
            elif token.isdigit() and int(token) in node:
                node = node[int(token)]
            else:
                return last
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _assert_pointers_exist(report: LintReport) -> None:
    """Every diagnostic about a parsed file points at a spot that exists in it."""
    for diagnostic in report.diagnostics:
        if not diagnostic.pointer:
            continue
        data = yaml.safe_load(Path(diagnostic.file).read_text(encoding="utf-8"))
        assert _names_a_spot(data, diagnostic.pointer), f"no such spot: {diagnostic}"


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", _params(CASES))
def test_broken_spec_is_reported_at_the_spot(
    broken: Case, spec_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken.mutate(spec_copy)
    monkeypatch.chdir(spec_copy.parent)
    report = lint_specs([spec_copy])

    _assert_no_internal_error(report)
    where = (f"specs/{broken.file}", broken.pointer, broken.rule)
    found = [d for d in report.diagnostics if (d.file, d.pointer, d.rule) == where]
    assert found, f"nothing reported at {where}; got:\n{_show(report)}"
    assert any(broken.message in d.message for d in found), _show(report)
    if broken.unexpected:
        assert not [d for d in report.diagnostics if broken.unexpected in d.message], _show(report)
    _assert_pointers_exist(report)


STRUCTURE_CASES = [c for c in CASES if c.rule == "openapi" or c.id.startswith("openapi-")]


# Run in a fresh process: ``specs lint`` forks its worker only from a process with no
# other thread (a lock a thread holds at the fork would stay held in the worker), and a
# test session may have threads. The script counts the documents checked in the parent.
_LINT_BESIDE = """
import json, os, signal, sys
from pathlib import Path
from ecom_harness.specs import StructureWorker, lint_specs
from ecom_harness.specs.lint import _openapi_validator, _structure

checked = []
real = _openapi_validator.validate_structure
def counting(doc):
    checked.append(doc.display)
    return real(doc)
_openapi_validator.validate_structure = counting
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "kill-worker":
    _structure._prepare = die
with StructureWorker(parallel=True) as structure:
    report = lint_specs([Path(sys.argv[1])], structure=structure)
print(json.dumps({"diagnostics": [str(d) for d in report.diagnostics], "checked_here": checked}))
"""


def _lint_beside(specs: Path, *mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _LINT_BESIDE, str(specs), *(mode or ["normal"])],
        capture_output=True,
        text=True,
        check=True,
        cwd=specs.parent,
        timeout=120,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("broken", _params(STRUCTURE_CASES))
def test_structure_checked_in_a_worker_reports_the_same(
    broken: Case, spec_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``specs lint`` hands openapi-spec-validator's check to a forked worker: the report
    is the one lint gives in a single process, in the same order."""
    broken.mutate(spec_copy)
    monkeypatch.chdir(spec_copy.parent)
    alone = lint_specs([spec_copy])
    assert [d for d in alone.diagnostics if d.rule == broken.rule], _show(alone)
    beside = _lint_beside(spec_copy)
    assert beside["checked_here"] == []  # the worker did them all
    assert beside["diagnostics"] == [str(d) for d in alone.diagnostics]


def test_a_worker_that_dies_leaves_the_check_to_lint(
    spec_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-run (out of memory, a signal) costs time, not findings."""
    broken = next(c for c in STRUCTURE_CASES if c.rule == "openapi")
    broken.mutate(spec_copy)
    monkeypatch.chdir(spec_copy.parent)
    alone = lint_specs([spec_copy])
    beside = _lint_beside(spec_copy, "kill-worker")
    assert len(beside["checked_here"]) >= 12  # every OpenAPI document, here instead
    assert beside["diagnostics"] == [str(d) for d in alone.diagnostics]
    assert [d for d in alone.diagnostics if d.rule == "openapi"], _show(alone)


def test_corpus_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


def test_shipped_specs_lint_clean() -> None:
    report = lint_specs()
    assert report.ok, _show(report)
    assert report.files >= 13


# --- the command line ----------------------------------------------------------------------


def _run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["specs", "lint", *args])


def test_cli_exits_0_on_the_shipped_specs() -> None:
    result = _run_cli()
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def _break_operation_id(spec_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_yaml(SENDGRID, lambda d: mail_send(d).update(operationId="send_mail"))(spec_copy)
    monkeypatch.chdir(spec_copy.parent)


EXPECTED_LINE = (
    f"specs/{SENDGRID}#{MAIL_SEND}/operationId: "
    "operationId 'send_mail' is not lowerCamelCase [operation-id-case]"
)


def test_cli_exits_1_and_prints_one_line_per_problem(
    spec_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_operation_id(spec_copy, monkeypatch)
    result = _run_cli("specs")
    assert result.exit_code == 1, result.output
    assert EXPECTED_LINE in result.stdout.splitlines()
    assert "problems" in result.stderr


def test_cli_json_format_lists_every_problem(
    spec_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_operation_id(spec_copy, monkeypatch)
    result = _run_cli("--format", "json", "specs")
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert rows, result.stdout
    assert all(set(row) == {"file", "pointer", "message", "rule", "severity"} for row in rows)
    assert {
        "file": f"specs/{SENDGRID}",
        "pointer": f"{MAIL_SEND}/operationId",
        "message": "operationId 'send_mail' is not lowerCamelCase",
        "rule": "operation-id-case",
        "severity": "error",
    } in rows


def test_cli_exits_2_on_a_missing_path(tmp_path: Path) -> None:
    result = _run_cli(str(tmp_path / "no-such-specs"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


# --- odd inputs ----------------------------------------------------------------------------

OPENAPI_HEAD = 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\n'
ASYNCAPI_HEAD = 'asyncapi: 3.0.0\ninfo: {title: t, version: "1"}\n'
ONE_CHANNEL = "channels: {c: {address: c, messages: {m: {payload: {type: string}}}}}\n"

ODD_INPUTS: list[tuple[str, str | bytes]] = [
    # (id, file content)
    ("binary-garbage", bytes(range(256)) * 4),
    ("nul-byte", b"openapi: 3.1.0\x00\n"),
    ("deeply-nested-lists", "[" * 5000 + "]" * 5000),
    ("deeply-nested-mappings", "openapi: 3.1.0\nx: " + "{a: " * 3000 + "1" + "}" * 3000),
    ("scalar-document", "42\n"),
    ("two-yaml-documents", "openapi: 3.1.0\n---\nasyncapi: 3.0.0\n"),
    ("tab-indentation", "openapi: 3.1.0\n\tinfo: x\n"),
    ("python-tag", "openapi: 3.1.0\nx: !!python/object:os.system {}\n"),
    ("openapi-null-version", "openapi:\n"),
    ("openapi-paths-is-a-number", OPENAPI_HEAD + "paths: 5\n"),
    (
        "openapi-null-operation",
        OPENAPI_HEAD + 'paths: {"/a": {"get": null}}\n',
    ),
    (
        "openapi-self-referencing-schema",
        OPENAPI_HEAD + "paths: {}\ncomponents: {schemas: {A: {$ref: '#/components/schemas/A'}}}\n",
    ),
    (
        "openapi-json-bad-operation-id",
        '{"openapi": "3.1.0", "info": {"title": "t", "version": "1", "x-component": "t"}, '
        '"paths": {"/a": {"get": {"operationId": "Get_A", "responses": {"200": '
        '{"description": "ok"}}}}}}',
    ),
    (
        "openapi-unquoted-status-code",
        OPENAPI_HEAD + "paths: {/a: {get: {responses: {200: {description: ok}}}}}\n",
    ),
    ("openapi-recursive-alias", OPENAPI_HEAD + "paths: {}\nx-loop: &a [*a]\n"),
    (
        "openapi-required-is-a-number",
        OPENAPI_HEAD + "paths: {}\ncomponents: {schemas: {A: "
        "{type: object, properties: {}, additionalProperties: false, required: 5}}}\n",
    ),
    ("asyncapi-operations-list", ASYNCAPI_HEAD + "operations: []\n"),
    (
        "asyncapi-messages-is-a-number",
        ASYNCAPI_HEAD
        + ONE_CHANNEL
        + "operations: {o: {action: send, channel: {$ref: '#/channels/c'}, messages: 5}}\n",
    ),
    ("topology-edges-is-a-number", "version: 1\ncomponents: {}\nedges: 7\n"),
    (
        "topology-edge-to-nowhere",
        "version: 1\ncomponents: {a: {kind: client}}\nedges: [{from: a, to: b, protocol: https}]\n",
    ),
    ("yaml-complex-key", "openapi: 3.1.0\n? [a, b]\n: c\n"),
]


@pytest.mark.parametrize(
    "content",
    [pytest.param(content, id=name) for name, content in ODD_INPUTS],
)
def test_odd_input_is_reported_not_crashed_on(
    content: str | bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    monkeypatch.chdir(tmp_path)
    report = lint_specs([path])
    assert report.diagnostics, "an odd input must yield at least one diagnostic"
    assert all(d.file == "odd.yaml" for d in report.diagnostics), _show(report)
    _assert_no_internal_error(report)


def test_yaml_merge_keys_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "openapi: 3.1.0\n"
        "info: {title: t, version: '1', x-contact: &who {name: shop}}\n"
        "x-owner: {<<: *who, role: owner}\n"
        "paths: {}\n"
    )
    monkeypatch.chdir(tmp_path)
    report = lint_specs([path])
    assert report.ok, _show(report)
