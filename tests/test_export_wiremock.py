"""``--format wiremock`` as another team uses it: every operation's mappings loaded by a
real WireMock 3 (the standalone jar from the npm package ``wiremock``, on the machine's
Java; ``.ci/run`` installs both), and every response example of every OpenAPI document
replayed against it -- picked by ``Prefer``, by status, as the default, and the generic
answers to a request without credentials or without its body.

One WireMock serves one host, so one component at a time: the first from its export
folder given as ``--root-dir``, the others loaded through WireMock's admin API."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.specs import Api, Operation, load_api, shipped_components, shipped_spec
from ecom_harness.stubs.engine import sample_from_schema

WIREMOCK = REPO / "tests" / "wiremock"
FIRST = "order-svc"  # served from its folder; the others imported
CREDENTIALS = {"bearer": "Bearer test-token", "basic": "Basic " + b64encode(b"AC1:tok").decode()}


def wiremock_jar() -> Path:
    jars = sorted(
        (WIREMOCK / "node_modules" / "wiremock" / "build").glob("wiremock-standalone-3*.jar")
    )
    if not jars or shutil.which("java") is None:
        pytest.fail(
            "WireMock 3 needs Java and the npm package: `npm ci --prefix tests/wiremock` "
            "(.ci/run does both)"
        )
    return jars[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wiremock") / "mocks"
    result = CliRunner().invoke(
        cli, ["stubs", "generate", *shipped_components(), "--format", "wiremock", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def wiremock(exported: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            *("java", "-jar", str(wiremock_jar()), "--port", str(port)),
            *("--bind-address", "127.0.0.1", "--root-dir", str(exported / FIRST)),
            *("--disable-banner", "--no-request-journal"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/__admin/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "WireMock did not start in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _credential(api: Api, operation: Operation) -> dict[str, str]:
    if not operation.security or not operation.security[0]:
        return {}
    scheme = api.security_schemes[next(iter(operation.security[0]))]
    if scheme["type"] == "http":
        return {"Authorization": CREDENTIALS[scheme["scheme"].lower()]}
    return {scheme["name"]: "test-key"}


def _request(api: Api, operation: Operation) -> dict[str, Any]:
    """A request the spec accepts, built from the spec alone."""
    path = operation.path
    for param in operation.parameters:
        if param.location == "path":
            path = path.replace("{" + param.name + "}", "x1")
    headers = {p.name: "1" for p in operation.parameters if p.location == "header" and p.required}
    headers |= _credential(api, operation)
    query = {p.name: "1" for p in operation.parameters if p.location == "query" and p.required}
    request: dict[str, Any] = {
        "method": operation.method,
        "url": path,
        "headers": headers,
        "params": query,
    }
    if operation.body:
        media = next(iter(operation.body.values()))
        value = next(iter(media.examples.values()), None)
        if value is None and media.schema_pointer:
            value = sample_from_schema(api.document.data, {"$ref": "#" + media.schema_pointer})
        if media.media_type == "application/x-www-form-urlencoded":
            request["content"] = urlencode(value or {})
        else:
            request["json"] = value
        headers["Content-Type"] = media.media_type
    return request


def _expect(answer: httpx.Response, status: int, body: Any, what: str) -> None:
    assert answer.status_code == status, f"{what}: {answer.status_code} {answer.text[:300]}"
    if body is not None:
        assert answer.json() == body, what


def _examples(operation: Operation, status: str) -> dict[str, Any]:
    media = next(iter(operation.responses[status].content.values()), None)
    return media.examples if media else {}


def _load(client: httpx.Client, folder: Path) -> int:
    """Replace WireMock's mappings with those of one component's export folder."""
    files = sorted((folder / "mappings").glob("*.json"))
    assert client.delete("/__admin/mappings").status_code == 200
    imported = {"mappings": [orjson.loads(f.read_bytes()) for f in files]}
    assert client.post("/__admin/mappings/import", json=imported).status_code == 200
    return len(files)


def test_every_example_of_every_spec_is_answered_by_wiremock(wiremock: str, exported: Path) -> None:
    replayed = 0
    with httpx.Client(base_url=wiremock) as client:
        loaded = client.get("/__admin/mappings").json()["meta"]["total"]
        assert loaded == len(list((exported / FIRST / "mappings").glob("*.json"))) > 10
        for component in [FIRST, *(c for c in shipped_components() if c != FIRST)]:
            if component != FIRST:
                assert _load(client, exported / component) > 0
                assert client.get("/__admin/mappings").json()["meta"]["total"] > 0
            api = load_api(shipped_spec(component))
            for operation in api.operations.values():
                request = _request(api, operation)
                name = f"{component} {operation.operation_id}"
                statuses = [s for s in operation.responses if s.isdigit()]
                for status in statuses:
                    examples = _examples(operation, status)
                    for example, value in examples.items():
                        prefer = {"Prefer": f"code={status}, example={example}"}
                        sent = {**request, "headers": request["headers"] | prefer}
                        _expect(client.request(**sent), int(status), value, f"{name} {example}")
                        replayed += 1
                    first = next(iter(examples.values()), None)
                    by_code = {
                        **request,
                        "headers": request["headers"] | {"Prefer": f"code={status}"},
                    }
                    _expect(client.request(**by_code), int(status), first, f"{name} {status}")
                default = next((s for s in statuses if s.startswith("2")), None)
                if default is not None:
                    first = next(iter(_examples(operation, default).values()), None)
                    _expect(client.request(**request), int(default), first, f"{name} default")
                credential = _credential(api, operation)
                if credential and "401" in operation.responses:
                    bare = {k: v for k, v in request["headers"].items() if k not in credential}
                    anonymous = client.request(**{**request, "headers": bare})
                    assert anonymous.status_code == 401, name
                invalid = next((s for s in ("422", "400") if s in operation.responses), None)
                if operation.body_required and invalid is not None:
                    empty = {k: v for k, v in request.items() if k not in ("json", "content")}
                    assert client.request(**empty).status_code == int(invalid), name
    assert replayed > 150  # every named example of 11 documents
