"""``ecom-harness stubs ...``: serve spec-driven stubs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ._failures import fail, first_line, start_failures
from .stubs_generate import generate_command


@click.group()
def stubs() -> None:
    """Serve the components' stubs, generated from their specs."""


def _print_table(urls: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="stubs (Ctrl-C to stop)")
    table.add_column("component")
    table.add_column("url")
    for name, url in urls.items():
        table.add_row(name, url)
    Console().print(table)


@stubs.command("serve", short_help="Serve stubs (or an exported bundle) until Ctrl-C.")
@click.argument("components", nargs=-1)
@click.option(
    "--spec",
    "spec_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also serve this OpenAPI document (from its examples). Repeatable.",
)
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port of the first stub, the next ones count up; default 0: free ports.",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Serve a stub bundle (from `stubs generate --format bundle`) as its stub.toml says.",
)
@click.option(
    "--postgres",
    "database_url",
    metavar="DSN",
    help="PostgreSQL server for state (one database per service); default SQLite.",
)
@click.option("--redis", "redis_url", metavar="URL", help="Redis URL; default fakeredis.")
def serve(  # noqa: PLR0917 - one parameter per Click option
    components: tuple[str, ...],
    spec_files: tuple[Path, ...],
    host: str | None,
    port: int | None,
    bundle: Path | None,
    database_url: str | None,
    redis_url: str | None,
) -> None:
    """Serve COMPONENTS (default: all shipped components), or a --bundle, until Ctrl-C."""
    from ecom_harness.specs import SpecNotFound
    from ecom_harness.stubs import Backends, ServePlan, serve_stubs

    backends = Backends(database_url=database_url, redis_url=redis_url)
    if bundle is not None:
        from .stubs_bundle import serve_bundle

        if components or spec_files:
            raise click.UsageError("--bundle serves the bundle's components: name none")
        serve_bundle(bundle, host, port, backends)
        return
    plan = ServePlan(
        components=components,
        spec_files=spec_files,
        host=host or "127.0.0.1",
        port=port or 0,
        backends=backends,
    )
    try:
        plan.served()
    except SpecNotFound as exc:
        raise click.BadParameter(str(exc), param_hint="COMPONENTS") from None
    try:
        asyncio.run(serve_stubs(plan, _print_table))
    except start_failures() as exc:  # a busy port, an unusable --spec, an unreachable backend
        fail(f"cannot serve the stubs: {first_line(exc)}")
    click.echo("stopped", err=True)


stubs.add_command(generate_command)
