"""``ecom-harness run`` and ``ecom-harness scenarios``: the main job, and the scenarios it
knows.

``run`` exits 0 when every expectation of every scenario was met, 1 when one was not,
2 on a usage or set-up error (unknown scenario, bad scenario file, a real service that
never answered, a port in use) and 3 on an internal error.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ._failures import first_line, start_failures
from .mesh import mesh_options

if TYPE_CHECKING:  # the harness loads when a command runs, not for --help
    from ecom_harness.harness import MeshOptions, Scenario
    from ecom_harness.harness.contracts import PactFile

__all__ = ["run", "scenarios"]

EXIT_SETUP = 2  # usage or set-up error (ecom_harness.harness.run_events.EXIT_SETUP)


def _setup_error(message: str) -> NoReturn:
    click.echo(f"ecom-harness: {message}", err=True)
    sys.exit(EXIT_SETUP)


def _parse_real_cmd(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    commands: dict[str, str] = {}
    for value in values:
        name, sep, command = value.partition("=")
        if not sep or not name or not command.strip():
            raise click.BadParameter(
                f"'{value}' is not NAME=COMMAND (for example order-svc='python my_order_svc.py')"
            )
        if name in commands:
            raise click.BadParameter(f"'{name}' is given twice")
        commands[name] = command
    return commands


_scenarios_option = click.option(
    "--scenarios",
    "directories",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also load the scenario files (*.yaml) in DIR (repeatable).",
)


def _load(directories: Sequence[Path]) -> dict[str, Scenario]:
    from ecom_harness.harness import ScenarioError, load_scenarios

    try:
        return load_scenarios(directories)
    except ScenarioError as exc:
        _setup_error(str(exc))


def _select(known: dict[str, Scenario], names: Sequence[str]) -> list[Scenario]:
    if not names or list(names) == ["all"]:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        _setup_error(
            f"unknown scenario {', '.join(repr(n) for n in unknown)} "
            f"(known: {', '.join(known)}; or 'all')"
        )
    return [known[n] for n in dict.fromkeys(names)]


RUN_HELP = "Run scenarios end to end and judge them against the journal."


@click.command("run", short_help=RUN_HELP)
@click.argument("names", nargs=-1, metavar="SCENARIO...|all")
@_scenarios_option
@click.option(
    "--seed", type=int, help="Seed for generated values (emails, keys): a repeatable run."
)
@click.option(
    "--real-cmd",
    "real_commands",
    multiple=True,
    metavar="NAME=COMMAND",
    callback=_parse_real_cmd,
    help="Start a real NAME with COMMAND (its environment from `ecom-harness env`), wait for "
    "its port, stop it afterwards. Needs --port-base. Repeatable.",
)
@click.option(
    "--startup-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a --real-cmd service (or a --real URL) has to answer on its port.",
)
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results as JSON.",
)
@click.option(
    "--junit",
    "junit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JUnit XML (one test case per expectation).",
)
@click.option(
    "--journal",
    "journal_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every scenario's journal as JSON Lines.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scenario player with every scenario's run: one self-contained HTML file.",
)
@click.option("-v", "--verbose", is_flag=True, help="List every expectation as it is checked.")
@click.option(
    "--pacts",
    "pact_folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Pact files every interaction must match (default: the committed contracts/).",
)
@click.option("--no-pacts", is_flag=True, help="Do not judge the interactions against the pacts.")
@mesh_options
def run(  # noqa: PLR0917 - Click passes every option by keyword
    names: tuple[str, ...],
    directories: tuple[Path, ...],
    seed: int | None,
    real_commands: dict[str, str],
    startup_timeout: float,
    json_file: Path | None,
    junit_file: Path | None,
    journal_file: Path | None,
    html_file: Path | None,
    verbose: bool,
    pact_folder: Path | None,
    no_pacts: bool,
    options: MeshOptions,
) -> None:
    """Run scenarios (default: all) end to end through the gateway, on stubs or real
    services, and judge every expectation against the journal.

    Exit 0 all passed, 1 an expectation failed, 2 usage or set-up error, 3 internal error.
    """
    from ecom_harness.harness import (
        ConsoleReporter,
        JournalReporter,
        JsonReporter,
        JUnitReporter,
        RunPlan,
        run_scenarios,
    )
    from ecom_harness.harness.reporters import use_rich
    from ecom_harness.harness.run_events import Handler

    known = _load(directories)
    selected = _select(known, names)
    handlers: list[Handler] = [
        ConsoleReporter(sys.stdout, rich=use_rich(sys.stdout, dict(os.environ)), verbose=verbose)
    ]
    handlers += [JsonReporter(json_file)] if json_file else []
    handlers += [JUnitReporter(junit_file)] if junit_file else []
    handlers += [JournalReporter(journal_file)] if journal_file else []
    pacts = () if no_pacts else _pacts(pact_folder)
    if html_file:  # the player's page loads only when asked for
        from ecom_harness.harness.viewer import HtmlReporter
        from ecom_harness.specs import load_topology

        handlers.append(HtmlReporter(html_file, load_topology(), known))
    plan = RunPlan(selected, options, real_commands, seed, startup_timeout, pacts)
    try:
        result = asyncio.run(run_scenarios(plan, handlers))
    except start_failures() as exc:
        _setup_error(f"cannot run the mesh: {first_line(exc)}")
    if result.setup_error:
        _setup_error(result.setup_error)
    sys.exit(result.exit_code)


def _pacts(folder: Path | None) -> tuple[PactFile, ...]:
    """The pacts the run judges against; unreadable ones are a usage error."""
    from ecom_harness.harness.contracts import PactError, default_pact_dir, load_pacts

    try:
        return tuple(load_pacts(folder or default_pact_dir()))
    except PactError as exc:
        _setup_error(str(exc))


@click.group("scenarios", short_help="List the scenarios, or show one in words.")
def scenarios() -> None:
    """The scenarios `ecom-harness run` knows."""


@scenarios.command("list")
@_scenarios_option
def list_scenarios(directories: tuple[Path, ...]) -> None:
    """Every scenario: its name and title."""
    known = _load(directories)
    width = max((len(n) for n in known), default=0)
    for name, scenario in known.items():
        click.echo(f"{name.ljust(width)}  {scenario.title}")


@scenarios.command("show")
@click.argument("name")
@_scenarios_option
def show_scenario(name: str, directories: tuple[Path, ...]) -> None:
    """A scenario's steps and expectations, in words."""
    from ecom_harness.harness.scenario_words import describe_scenario

    (scenario,) = _select(_load(directories), [name])
    click.echo(describe_scenario(scenario))
