"""``ecom-harness specs ...``: commands about the spec documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from ._failures import usage_fail


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
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A pyproject.toml ([tool.ecom-harness.lint]) or ecom-harness.toml ([lint]) setting "
    "each rule to error, warn or off; default: one of those in the working directory.",
)
def lint(
    paths: tuple[Path, ...],
    fmt: str,
    scenario_dirs: tuple[Path, ...],
    config_path: Path | None,
) -> None:
    """Lint spec files and directories (default: the specs shipped with ecom-harness),
    and the scenario files: the shipped ones and those in each --scenarios DIR.

    Prints one line per problem: FILE#POINTER: MESSAGE [RULE] (FILE#POINTER: warning:
    MESSAGE [RULE] for a rule the config sets to warn). Correctness rules apply to every
    document; the house conventions to the platform's own specs, or where the config
    asks. Exits 0 when no error was found (warnings allowed), 1 when errors were found,
    2 on a usage error (a bad config included).
    """
    from ecom_harness.specs import StructureWorker

    # forked before the checks' modules load: its import of openapi-spec-validator is
    # the longest path of the command
    with StructureWorker(parallel=True) as structure:
        from ecom_harness.harness import lint_scenario_files
        from ecom_harness.specs import LintConfigError, LintReport, lint_specs, load_lint_config

        try:
            config = load_lint_config(config_path)
        except LintConfigError as exc:
            usage_fail(str(exc))
        report = lint_specs(paths, config, structure=structure)
    scenario_problems, scenario_files = lint_scenario_files(
        scenario_dirs, documents=report.documents
    )
    diagnostics = [*report.diagnostics, *scenario_problems]
    report = LintReport(tuple(diagnostics), report.files + scenario_files)
    if fmt == "json":
        rows = [
            {
                "file": d.file,
                "pointer": d.pointer,
                "message": d.message,
                "rule": d.rule,
                "severity": d.severity,
            }
            for d in report.diagnostics
        ]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        for diagnostic in report.diagnostics:
            click.echo(str(diagnostic))
        count = len(report.diagnostics)
        summary = f"{report.files} files checked, {count} problem{'s' * (count != 1)}"
        if report.warnings:
            summary += f" ({report.errors} errors, {report.warnings} warnings)"
        click.echo(summary, err=True)
    sys.exit(0 if report.ok else 1)
