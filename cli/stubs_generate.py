"""``ecom-harness stubs generate``: stubs for other teams, and ``--check`` for staleness.

Bad input is one line and exit 2 (an unknown component or format, a component with no
spec, an output directory that is not an earlier export); ``--check`` exits 1 when the
export is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

__all__ = ["generate_command"]

EXIT_STALE, EXIT_USAGE = 1, 2
# The help names the formats without importing the exporters (`--help` stays light);
# a test checks this list against ecom_harness.stubs.exporters.FORMATS.
FORMAT_NAMES = ("bundle", "wiremock", "responses", "httpx", "events-python")


def _usage(message: str) -> NoReturn:
    click.echo(f"ecom-harness: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.command("generate", short_help="Export stubs for other teams; --check tells a stale export.")
@click.argument("components", nargs=-1)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Directory to write the export to.",
)
@click.option(
    "--format",
    "fmt",
    metavar="FORMAT",
    default="bundle",
    show_default=True,
    help=f"One of: {', '.join(FORMAT_NAMES)}.",
)
@click.option(
    "--check",
    "check_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Instead: tell whether the export in DIR is stale against the current specs.",
)
def generate_command(
    components: tuple[str, ...], out: Path | None, fmt: str, check_dir: Path | None
) -> None:
    """Export COMPONENTS as stubs another team runs in its own stack: a self-contained
    bundle, WireMock mappings, a `responses` module, an `httpx` transport, or typed event
    models (events-python). Every export names the spec versions it came from."""
    if check_dir is not None:
        if components or out is not None:
            _usage("--check DIR takes no COMPONENT and no --out")
        _check(check_dir)
        return
    if out is None:
        _usage("--out DIR is required (or --check DIR)")
    from ecom_harness.stubs.exporters import ExportError, generate

    try:
        manifest = generate(list(components), fmt, out)
    except ExportError as exc:
        _usage(str(exc))
    versions = ", ".join(f"{e['title']} {e['version']}" for e in manifest.specs.values())
    written = len(manifest.files) - len(manifest.kept)
    click.echo(f"wrote {written} files to {out} ({fmt}; from {versions})")
    for relative in manifest.kept:
        click.echo(f"kept {relative}: edited since the last export", err=True)


def _check(directory: Path) -> None:
    from ecom_harness.stubs.exporters import ExportError, check

    try:
        result = check(directory)
    except ExportError as exc:
        _usage(str(exc))
    made = f"{result.manifest.format} of {', '.join(result.manifest.components)}"
    if result.up_to_date:
        click.echo(f"{directory}: up to date ({made})")
        return
    for line in result.stale:
        click.echo(f"{directory}: stale: {line}")
    click.echo(
        f"regenerate: ecom-harness stubs generate {' '.join(result.manifest.components)} "
        f"--format {result.manifest.format} --out {directory}",
        err=True,
    )
    sys.exit(EXIT_STALE)
