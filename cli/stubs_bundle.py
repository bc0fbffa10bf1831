"""``ecom-harness stubs serve --bundle DIR``: a stub bundle in the foreground."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ecom_harness.harness import (
    BundleError,
    StubServer,
    load_bundle,
    run_until_signalled,
)
from ecom_harness.stubs import Backends

from ._failures import fail, first_line, start_failures

__all__ = ["serve_bundle"]


def serve_bundle(directory: Path, host: str | None, port: int | None, backends: Backends) -> None:
    try:
        options = load_bundle(directory, host=host, port=port, backends=backends)
    except BundleError as exc:
        fail(str(exc))
    server = StubServer(options)
    try:
        run_until_signalled(lambda requested: _serve(server, requested))
    except start_failures() as exc:
        fail(f"cannot serve the bundle: {first_line(exc)}")
    click.echo("stopped", err=True)


async def _serve(server: StubServer, requested: threading.Event) -> None:
    await server.start()
    try:
        table = Table(title="stub bundle (Ctrl-C to stop)")
        table.add_column("component")
        table.add_column("url")
        for name, url in server.urls.items():
            table.add_row(name, url)
        Console().print(table)
        await asyncio.to_thread(requested.wait)
    finally:
        await server.stop()
