"""``ecom-harness ui``: the scenario player in the browser, running scenarios live."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._failures import fail, first_line
from .mesh import mesh_options

if TYPE_CHECKING:  # the harness loads when the command runs, not for --help
    from ecom_harness.harness import MeshOptions

__all__ = ["ui"]

EXIT_SETUP = 2  # usage or set-up error, as `run` says for a bad scenario file


@click.command("ui", short_help="Open the scenario player in the browser and run scenarios live.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=3000,
    show_default=True,
    help="Port of the web page (0: any free one).",
)
@click.option(
    "--scenarios",
    "directories",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also offer the scenario files (*.yaml) in DIR (repeatable).",
)
@mesh_options
def ui(port: int, directories: tuple[Path, ...], options: MeshOptions) -> None:
    """Serve http://HOST:PORT/: the topology, the scenarios under Examples -> E-Commerce
    Microservices, a Run button per scenario that runs it on a mesh (the same options as
    `run`) and streams its journal to the page, and a player for each finished run.
    Ctrl-C stops it."""
    from ecom_harness.harness import (
        Mesh,
        MeshConfigError,
        ScenarioError,
        load_scenarios,
        run_until_signalled,
    )
    from ecom_harness.harness.viewer import listen, serve_ui, ui_app
    from ecom_harness.specs import load_topology

    try:
        scenarios = load_scenarios(directories)
    except ScenarioError as exc:  # a set-up error, as for `run`
        click.echo(f"ecom-harness: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    try:
        Mesh(options)  # the options are checked here, before anything starts
    except MeshConfigError as exc:
        fail(str(exc))
    app = ui_app(load_topology(), options, scenarios)
    try:
        sock = listen(options.host, port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else first_line(exc)
        fail(f"cannot listen on {options.host}:{port}: {reason}")
    host, bound = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        click.echo(f"ecom-harness ui: http://{shown}:{bound}/  (Ctrl-C stops it)", err=True)

    try:
        run_until_signalled(lambda requested: serve_ui(app, sock, requested, ready))
    finally:
        sock.close()
    click.echo("stopped", err=True)
