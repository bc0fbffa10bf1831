"""The ``ecom-harness`` command: a root group and one module per command group.

Exit codes, the same for every command:

==== =========================================================
0    success: nothing wrong found
1    problems found (lint problems, an unusable input file)
2    usage error (unknown option, missing path, bad value)
3    internal error (a bug in ecom-harness; the message says what)
==== =========================================================
"""

from __future__ import annotations

import importlib
import sys

import click

from ecom_harness import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

# Command name -> "module:attribute", imported only when that command runs (Click's lazy
# subcommand pattern): `specs lint` should not wait for SQLAlchemy, aiokafka and uvicorn.
COMMANDS = {
    "specs": "specs:specs",
    "topology": "topology:topology",
    "stubs": "stubs:stubs",
    "up": "mesh:up",
    "env": "mesh:env",
    "run": "run:run",
    "scenarios": "run:scenarios",
    "report": "report:report",
    "ui": "ui:ui",
}


class LazyGroup(click.Group):
    """A group whose subcommands live in :data:`COMMANDS` and load on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(f".{module}", __package__), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecom-harness")
def cli() -> None:
    """Contract-first specs, spec-driven stubs and a scenario harness for the e-commerce
    platform. Exit codes: 0 ok, 1 problems found, 2 usage error, 3 internal error."""


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user."""
    try:
        cli.main(prog_name="ecom-harness")
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the documented last resort, never a traceback
        click.echo(f"ecom-harness: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
