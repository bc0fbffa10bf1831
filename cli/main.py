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

import sys

import click

from ecom_harness import __version__

from .mesh import env, up
from .specs import specs
from .stubs import stubs
from .topology import topology

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecom-harness")
def cli() -> None:
    """Contract-first specs, spec-driven stubs and a scenario harness for the e-commerce
    platform. Exit codes: 0 ok, 1 problems found, 2 usage error, 3 internal error."""


cli.add_command(specs)
cli.add_command(stubs)
cli.add_command(topology)
cli.add_command(up)
cli.add_command(env)


def main() -> None:
    """Console-script entry point: never lets a traceback reach the user."""
    try:
        cli.main(prog_name="ecom-harness")
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the documented last resort, never a traceback
        click.echo(f"ecom-harness: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
