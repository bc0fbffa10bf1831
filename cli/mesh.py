"""``ecom-harness up`` and ``ecom-harness env``: the whole mesh in the foreground, and
what a real service needs to take a stub's place in it. Both take the same mesh options.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._failures import fail, first_line, start_failures
from ._options import parse_real, postgres_option, redis_option, writable_file

if TYPE_CHECKING:  # the mesh loads when a command runs, not for --help
    from rich.table import Table

    from ecom_harness.harness import Mesh, MeshOptions, PortPlan

__all__ = ["env", "up"]

KIND_ORDER = {"gateway": 0, "service": 1, "external": 2}  # the address table's order

# --- the shared mesh options ---------------------------------------------------------------


def _parse_kafka(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None or value == "local":
        return value
    for server in value.split(","):
        host, _sep, port = server.rpartition(":")
        if not (host and port.isdigit() and 0 < int(port) < 65536):
            raise click.BadParameter(f"'{value}' is neither 'local' nor HOST:PORT[,HOST:PORT...]")
    return value


def _check_port_base(_: click.Context, __: click.Parameter, value: int | None) -> int | None:
    if value is not None:
        from ecom_harness.harness import PortPlan
        from ecom_harness.specs import load_topology

        try:
            PortPlan.for_topology(load_topology(), value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


_MESH_OPTIONS = (
    click.option(
        "--real",
        multiple=True,
        metavar="NAME=URL",
        callback=parse_real,
        help="A real service takes the stub's place (repeatable).",
    ),
    click.option(
        "--port-base",
        type=int,
        metavar="N",
        callback=_check_port_base,
        help="Fixed ports: components from N, admin N+98, local Kafka N+99, edges from N+100.",
    ),
    click.option(
        "--kafka",
        metavar="local|HOST:PORT",
        callback=_parse_kafka,
        help="A real broker: 'local' starts Tansu on loopback; default an in-process bus.",
    ),
    redis_option(),
    postgres_option(),
    click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on."),
)


def mesh_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the mesh options to ``command`` and hand it one ``options: MeshOptions``."""

    @functools.wraps(command)
    def with_options(
        *args: Any,
        real: dict[str, str],
        port_base: int | None,
        kafka: str | None,
        redis_url: str | None,
        postgres_url: str | None,
        host: str,
        **kwargs: Any,
    ) -> None:
        from ecom_harness.harness import MeshOptions

        options = MeshOptions(
            real=real,
            port_base=port_base,
            kafka=kafka,
            redis_url=redis_url,
            postgres_url=postgres_url,
            host=host,
        )
        command(*args, options=options, **kwargs)

    for option in reversed(_MESH_OPTIONS):
        with_options = option(with_options)
    return with_options


# --- env ---------------------------------------------------------------------------------


@click.command("env", short_help="Print what a real COMPONENT needs to join a mesh.")
@click.argument("component")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("sh", "dotenv", "json")),
    default="sh",
    show_default=True,
    help="Shell exports, a .env file, or a JSON object.",
)
@mesh_options
def env(component: str, fmt: str, options: MeshOptions) -> None:
    """Print what a real COMPONENT needs to join a mesh started with the same options:
    PORT, its dependencies' URLs (through the edge proxies), KAFKA_BOOTSTRAP_SERVERS,
    DATABASE_URL, REDIS_URL and REDIS_KEY_PREFIX (keep every key under it: the mesh
    empties it, and only it, when each scenario starts). Needs --port-base."""
    from ecom_harness.harness import EnvError, PortPlan, component_env
    from ecom_harness.specs import load_topology

    topology = load_topology()
    plan = PortPlan.for_topology(topology, options.port_base)
    try:
        result = component_env(topology, plan, options, component)
    except EnvError as exc:
        raise click.UsageError(str(exc)) from None
    for warning in result.warnings:
        click.echo(f"ecom-harness: warning: {warning}", err=True)
    click.echo(result.render(fmt))


# --- up ----------------------------------------------------------------------------------


@click.command("up", short_help="Run the whole mesh in the foreground and print its addresses.")
@mesh_options
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=writable_file,
    help="Stream the journal here as JSON Lines (the whole run; memory keeps the newest). "
    "Checked before the start.",
)
@click.option(
    "--rate-limit",
    metavar="LIMIT",
    help="The gateway's limit per user, e.g. 100000/minute for a load run (default 100/minute).",
)
@click.option(
    "--ip-rate-limit",
    metavar="LIMIT",
    help="The gateway's limit per client address (default 300/minute).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="ADDRESS|NETWORK",
    help="Believe X-Forwarded-For from this proxy (repeatable; default none).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=0),
    metavar="N",
    help="Requests the gateway lets through at once; the rest wait their turn "
    "(default 32; 0: no bound).",
)
def up(
    *,
    options: MeshOptions,
    journal: Path | None,
    rate_limit: str | None,
    ip_rate_limit: str | None,
    trusted_proxies: tuple[str, ...],
    max_in_flight: int | None,
) -> None:
    """Run the whole mesh in the foreground and print its addresses (gateway first);
    Ctrl-C stops everything, a broker it started included."""
    from ecom_harness.harness import (
        GATEWAY,
        Mesh,
        MeshConfigError,
        run_until_signalled,
        unreachable_real_services,
    )

    gateway: dict[str, Any] = {"trusted_proxies": list(trusted_proxies)}
    if rate_limit is not None:
        gateway["rate_limit"] = rate_limit
    if ip_rate_limit is not None:
        gateway["ip_rate_limit"] = ip_rate_limit
    if max_in_flight is not None:
        gateway["max_in_flight"] = max_in_flight
    settings = {**options.settings, GATEWAY: {**options.settings.get(GATEWAY, {}), **gateway}}
    try:
        mesh = Mesh(dataclasses.replace(options, journal_file=journal, settings=settings))
    except MeshConfigError as exc:
        fail(str(exc))
    for warning in unreachable_real_services(options.real):  # it may come up later
        click.echo(f"ecom-harness: warning: {warning}", err=True)
    try:
        run_until_signalled(lambda requested: _serve(mesh, requested, journal))
    except start_failures() as exc:
        fail(f"cannot run the mesh: {first_line(exc)}{_hint(exc, mesh.plan)}")
    click.echo("stopped", err=True)


async def _serve(mesh: Mesh, requested: threading.Event, journal: Path | None) -> None:
    from rich.console import Console

    await mesh.start()  # stops what it started if it fails
    try:
        # A change of the broker's state is one line of the broker watch's own logger
        # (``kafka broker ... is down; restarting it``): not printed here a second time.
        console = Console()
        console.print(address_table(mesh))
        console.print(f"the client's way in (journaled): curl {mesh.entry_url}/health")
        console.print("Ctrl-C stops everything")
        await asyncio.to_thread(requested.wait)
        click.echo("stopping the mesh ...", err=True)
    finally:
        await mesh.stop()  # closes the journal file
    if journal is not None:
        count = mesh.journal.written
        click.echo(f"journal saved to {journal} ({count} entries)", err=True)


def address_table(mesh: Mesh) -> Table:
    """Components (gateway, services, externals; real or stub), then the edge proxies,
    the admin API and a real broker."""
    from rich.table import Table

    table = Table(title="ecom-harness mesh")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("address", overflow="fold")
    kinds = mesh.topology.components
    for name in sorted(mesh.plan.components, key=lambda n: KIND_ORDER[kinds[n].kind]):
        table.add_row(name, "real" if name in mesh.options.real else "stub", mesh.url(name))
    for edge in mesh.plan.edges:
        table.add_row(edge, "proxy", mesh.url(edge))
    table.add_row("admin", "admin", mesh.url("admin"))
    if mesh.bootstrap_servers is not None:
        state = mesh.broker_watch.state if mesh.broker_watch else "up"
        table.add_row("kafka", f"broker ({state})", mesh.bootstrap_servers)
    return table


def _hint(exc: BaseException, plan: PortPlan) -> str:
    """For a busy port, which ports the fixed plan needs (the OS does not say which)."""
    if not (isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE and plan.admin):
        return ""
    ports = [*plan.components.values(), *plan.edges.values(), plan.admin]
    return f" (the mesh needs ports {min(ports)}..{max(ports)}: is another one running?)"
