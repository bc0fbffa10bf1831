"""``ecom-harness stubs ...``: serve spec-driven stubs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ._failures import fail, first_line, start_failures
from ._options import check_port_range, postgres_option, redis_option
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
    help="Serve this OpenAPI document from its examples (repeatable). Alone, only the "
    "documents given are served; with COMPONENTS, those too.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a --spec document whose examples break its own schemas (by default they "
    "are served as written, with an sl-violations header).",
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
@postgres_option("database_url")
@redis_option()
def serve(  # noqa: PLR0917 - one parameter per Click option
    components: tuple[str, ...],
    spec_files: tuple[Path, ...],
    strict: bool,
    host: str | None,
    port: int | None,
    bundle: Path | None,
    database_url: str | None,
    redis_url: str | None,
) -> None:
    """Serve COMPONENTS (default: all shipped components), or a --bundle, until Ctrl-C."""
    from ecom_harness.specs import SpecNotFound
    from ecom_harness.stubs import Backends, ServeConflict, ServePlan, serve_stubs

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
        strict=strict,
    )
    try:
        served = plan.all_served()
    except SpecNotFound as exc:
        raise click.BadParameter(str(exc), param_hint="COMPONENTS") from None
    except ServeConflict as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:  # an unusable --spec document
        fail(f"cannot serve the stubs: {first_line(exc)}")
    check_port_range(plan.port, len(served))

    def warn(line: str) -> None:
        click.echo(f"ecom-harness: warning: {line}", err=True)

    try:
        asyncio.run(serve_stubs(plan, _print_table, on_warning=warn))
    except start_failures() as exc:  # a busy port, an unusable --spec, an unreachable backend
        fail(f"cannot serve the stubs: {first_line(exc)}")
    click.echo("stopped", err=True)


stubs.add_command(generate_command)
