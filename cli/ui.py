"""``ecom-harness ui``: the scenario player in the browser, running scenarios live."""

from __future__ import annotations

from pathlib import Path

import click

from ecom_harness.harness import load_topology
from ecom_harness.harness.mesh import Mesh, MeshConfigError, MeshOptions
from ecom_harness.harness.running import run_until_signalled
from ecom_harness.harness.scenario_files import ScenarioError, load_scenarios
from ecom_harness.harness.viewer import listen, serve_ui, ui_app

from ._failures import fail, first_line
from .mesh import mesh_options

__all__ = ["ui"]


@click.command("ui")
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
    """Open http://HOST:PORT: the topology, the scenarios under Examples -> E-Commerce
    Microservices, a Run button per scenario that runs it on the mesh (same options as
    `run`) and streams the journal to the page, and a player for each finished run.
    Ctrl-C stops it."""
    try:
        scenarios = load_scenarios(directories)
        Mesh(options)  # the options are checked here, before anything starts
    except (ScenarioError, MeshConfigError) as exc:
        fail(str(exc))
    app = ui_app(load_topology(), options, scenarios)
    try:
        sock = listen(options.host, port)
    except OSError as exc:
        fail(f"cannot listen on {options.host}:{port}: {first_line(exc)}")
    host, bound = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        click.echo(f"ecom-harness ui: http://{shown}:{bound}/  (Ctrl-C stops it)", err=True)

    try:
        run_until_signalled(lambda requested: serve_ui(app, sock, requested, ready))
    finally:
        sock.close()
    click.echo("stopped", err=True)
