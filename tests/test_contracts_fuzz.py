"""``contracts fuzz``: schemathesis, as a library, against a provider's own service: a
deliberately broken one fails with the checks it breaks named, and the stubs pass."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import uvicorn
import yaml
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ecom_harness.cli.main import cli
from ecom_harness.harness.contracts import FuzzOptions, fuzz_provider

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "things", "version": "1", "x-component": "things"},
    "paths": {
        "/things/{id}": {
            "get": {
                "operationId": "getThing",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {
                        "description": "a thing",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"id": {"type": "integer"}},
                                    "required": ["id"],
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with closing(sock):
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join()


def broken_things() -> Starlette:
    """Answers the id as a string, and fails outright for negative ids."""

    async def get_thing(request: Request) -> JSONResponse:
        raw = request.path_params["id"]
        if raw.startswith("-"):
            return JSONResponse({"error": "boom"}, status_code=500)
        return JSONResponse({"id": raw})

    return Starlette(routes=[Route("/things/{id}", get_thing)])


def test_a_broken_provider_fails_with_the_checks_it_breaks(tmp_path: Path) -> None:
    spec = tmp_path / "things.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    with serving(broken_things()) as url:
        results = list(
            fuzz_provider(FuzzOptions(provider="things", url=url, spec=spec, max_examples=20))
        )
    failed = [r for r in results if not r.passed]
    assert failed, results
    broken = " ".join(r.message for r in failed)
    assert "response_schema_conformance" in broken
    assert any("GET /things/" in line for r in failed for line in r.details)


def test_an_unreachable_provider_is_a_set_up_error(tmp_path: Path) -> None:
    spec = tmp_path / "things.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["contracts", "fuzz", "catalog-svc", "--provider-url", f"http://127.0.0.1:{port}"],
    )
    assert result.exit_code == 2, result.output


def test_the_stubs_pass_their_own_specs(tmp_path: Path) -> None:
    """Every operation of every stub, stateful links included, with credentials."""
    junit = tmp_path / "fuzz.xml"
    result = CliRunner().invoke(
        cli,
        [
            "contracts",
            "fuzz",
            "--max-examples",
            "1",
            "--stateful-steps",
            "3",
            "--junit",
            str(junit),
        ],
    )
    assert result.exit_code == 0, result.output
    text = junit.read_text()
    for component in ("api-gateway", "order-svc", "stripe", "twilio", "user-svc"):
        assert f'name="{component}"' in text
    assert "stateful" in text
