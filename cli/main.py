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

import atexit
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from ecom_harness import __version__
from ecom_harness._startup import defer_collection

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

# Command name -> ("module:attribute", one-line help), imported only when that command runs
# (Click's lazy subcommand pattern): `--help` and `specs lint` should not wait for
# SQLAlchemy, aiokafka and uvicorn. The line is what `ecom-harness --help` lists, so the
# root help imports no command module at all (a test checks both agree).
COMMANDS = {
    "specs": ("specs:specs", "Check the spec documents."),
    "topology": ("topology:topology", "Print the components and who calls whom."),
    "stubs": ("stubs:stubs", "Serve the components' stubs, generated from their specs."),
    "up": ("mesh:up", "Run the whole mesh in the foreground and print its addresses."),
    "env": ("mesh:env", "Print what a real COMPONENT needs to join a mesh."),
    "run": ("run:run", "Run scenarios end to end and judge them against the journal."),
    "scenarios": ("run:scenarios", "List the scenarios, or show one in words."),
    "contracts": (
        "contracts:contracts",
        "Generate, verify, check, diff and fuzz the Pact contracts.",
    ),
    "report": ("report:report", "Turn a saved journal into a self-contained HTML player."),
    "ui": ("ui:ui", "Open the scenario player in the browser and run scenarios live."),
}


class LazyGroup(click.Group):
    """A group whose subcommands live in :data:`COMMANDS` and load on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute = entry[0].split(":")
        command = getattr(importlib.import_module(f".{module}", __package__), attribute)
        assert isinstance(command, click.Command)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, except that a usage error (a bad option value, an unknown
        option or command) is one line naming the option, and exit 2: the same for
        every command, checked before anything starts."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "ecom-harness"
            click.echo(f"ecom-harness: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_PROBLEMS)
        sys.exit(result if isinstance(result, int) else EXIT_OK)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS`' lines, importing none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecom-harness")
def cli() -> None:
    """Contract-first specs, spec-driven stubs and a scenario harness for the e-commerce
    platform. Exit codes: 0 ok, 1 problems found, 2 usage error, 3 internal error."""


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user, and ends the
    process without the interpreter's teardown (:func:`_end_without_teardown`)."""
    defer_collection()  # until the command's imports are done (ecom_harness._startup)
    atexit.register(_end_without_teardown)  # registered first, so it runs last
    try:
        cli.main(prog_name="ecom-harness")
    except SystemExit as exc:
        _exit_status.append(_status_of(exc.code))
        raise
    except Exception as exc:  # noqa: BLE001 - the documented last resort, never a traceback
        click.echo(f"ecom-harness: internal error: {type(exc).__name__}: {exc}", err=True)
        _exit_status.append(EXIT_INTERNAL)
        sys.exit(EXIT_INTERNAL)


_exit_status: list[int] = []  # the status the command ended with, once it has


def _status_of(code: object) -> int:
    """The process status ``sys.exit(code)`` gives (Python itself prints a message)."""
    return 0 if code is None else code if isinstance(code, int) else 1


def _end_without_teardown() -> None:
    """The last exit handler: once a command has ended, what exiting must do is done
    (non-daemon threads joined, every other exit handler run: temporary files removed,
    worker processes stopped), and only the interpreter's teardown of every module's
    objects is left, which does nothing a user sees and takes 0.2 s after ``run`` (0.1 s
    after ``specs lint``). The process ends here instead, with the command's status."""
    if not _exit_status:  # interrupted (Ctrl-C): Python's own exit
        return
    if "logging" in sys.modules:  # its handlers flushed, whoever registered first
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    os._exit(_exit_status[-1])
