"""``ecom-harness specs ...``: commands about the spec documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson


@click.group(short_help="Check the spec documents.")
def specs() -> None:
    """Check the OpenAPI, AsyncAPI and topology specs."""


@specs.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per problem, or a JSON array.",
)
@click.option(
    "--scenarios",
    "scenario_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also lint the scenario files in DIR (the shipped scenarios are always linted).",
)
def lint(paths: tuple[Path, ...], fmt: str, scenario_dirs: tuple[Path, ...]) -> None:
    """Lint spec files and directories (default: the specs shipped with ecom-harness),
    and the scenario files: the shipped ones and those in each --scenarios DIR.

    Prints one line per problem: FILE#POINTER: MESSAGE [RULE]. Exits 0 when clean,
    1 when problems were found, 2 on a usage error.
    """
    from ecom_harness.harness import lint_scenario_files
    from ecom_harness.specs import LintReport, lint_specs

    report = lint_specs(paths)
    scenario_problems, scenario_files = lint_scenario_files(scenario_dirs)
    diagnostics = [*report.diagnostics, *scenario_problems]
    report = LintReport(tuple(diagnostics), report.files + scenario_files)
    if fmt == "json":
        rows = [
            {"file": d.file, "pointer": d.pointer, "message": d.message, "rule": d.rule}
            for d in report.diagnostics
        ]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        for diagnostic in report.diagnostics:
            click.echo(str(diagnostic))
        count = len(report.diagnostics)
        summary = f"{report.files} files checked, {count} problem{'s' * (count != 1)}"
        click.echo(summary, err=True)
    sys.exit(0 if report.ok else 1)
