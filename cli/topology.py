"""``ecom-harness topology``: show the components and who calls whom."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ecom_harness.specs import TOPOLOGY_FORMATS, TopologyError, load_topology, render_topology


@click.command(short_help="Print the components and who calls whom.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted([*TOPOLOGY_FORMATS, "svg"])),
    default="text",
    show_default=True,
    help="Plain text, a Mermaid flowchart, Graphviz dot, or the player's SVG drawing.",
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A topology file (default: the one shipped with ecom-harness).",
)
def topology(fmt: str, path: Path | None) -> None:
    """Print the components and the directed edges between them; external edges marked.
    A --file is checked as ``specs lint`` checks it (its structure and the architecture
    rules), with the same messages."""
    if path is not None:
        from ecom_harness.specs import display_path, lint_specs

        shown = display_path(path)
        problems = [d for d in lint_specs([path]).diagnostics if d.file == shown]
        if problems:
            for diagnostic in problems:
                click.echo(str(diagnostic), err=True)
            sys.exit(1)
    try:
        model = load_topology(path)
    except TopologyError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(str(diagnostic), err=True)
        sys.exit(1)
    if fmt == "svg":
        from ecom_harness.harness.viewer import drawing_svg, layout_topology

        click.echo(drawing_svg(layout_topology(model)))
        return
    click.echo(render_topology(model, fmt))
