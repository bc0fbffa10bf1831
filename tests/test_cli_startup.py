"""The CLI answers at once: help for every command and group loads no engine, database,
Kafka or validator module, and the root help lists commands without importing them."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from ecom_harness.cli.main import COMMANDS, cli

# Modules that cost hundreds of milliseconds to import and that no help text needs.
HEAVY = (
    "sqlalchemy",
    "aiokafka",
    "uvicorn",
    "fakeredis",
    "redis",
    "httpx",
    "openapi_spec_validator",
    "jsonschema_rs",
    "rich",
    "ecom_harness.stubs",
    "ecom_harness.harness",
    "ecom_harness.specs.lint",
)

PROBE = """
import json, sys
from ecom_harness.cli.main import cli
try:
    cli.main(sys.argv[1:], prog_name="ecom-harness")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _help_invocations() -> list[list[str]]:
    found: list[list[str]] = [["--help"]]
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        found.append([name, "--help"])
        if isinstance(command, click.Group):
            found += [[name, sub, "--help"] for sub in command.list_commands(click.Context(cli))]
    return found


@pytest.mark.parametrize("argv", _help_invocations(), ids=" ".join)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Usage:" in result.stdout, result.stdout + result.stderr
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"`ecom-harness {' '.join(argv)}` imported {heavy}"


def test_root_help_lines_are_the_commands_own() -> None:
    """The root help is written from COMMANDS without importing the commands: each line
    must still be the command's own first help line."""
    context = click.Context(cli)
    for name, (_target, line) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None
        assert command.get_short_help_str(limit=200) == line, name


def test_env_formats_offered_are_the_harness_formats() -> None:
    from ecom_harness.harness import ENV_FORMATS

    command = cli.get_command(click.Context(cli), "env")
    assert command is not None
    fmt = next(p for p in command.params if p.name == "fmt")
    assert isinstance(fmt.type, click.Choice)
    assert tuple(fmt.type.choices) == ENV_FORMATS
