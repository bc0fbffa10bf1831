"""Options that several commands take, defined and checked once.

Every command naming ``--postgres``, ``--redis`` or ``--real`` gets the same check and the
same answer to a bad value: one line naming the option, exit 2 (a usage error), before
anything starts. Paths a command will write (``--journal``) are checked up front too, so
a run is never lost at the end because its output cannot be written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

__all__ = [
    "check_port_range",
    "is_url",
    "parse_real",
    "postgres_option",
    "redis_option",
    "url_of",
    "writable_file",
]

MAX_PORT = 65535


def is_url(value: str, schemes: tuple[str, ...], *, need_host: bool = False) -> bool:
    """Whether ``value`` is a URL with one of ``schemes`` (``postgresql+psycopg`` counts
    as ``postgresql``) and a usable port."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return False
    scheme = parts.scheme.split("+", 1)[0]
    return scheme in schemes and (bool(parts.hostname) or not need_host)


def url_of(*schemes: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A callback accepting a URL with one of ``schemes``."""

    def check(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
        if value is not None and not is_url(value, schemes):
            raise click.BadParameter(f"'{value}' is not a {' or '.join(schemes)} URL")
        return value

    return check


def postgres_option(dest: str = "postgres_url") -> Callable[[Any], Any]:
    return click.option(
        "--postgres",
        dest,
        metavar="DSN",
        callback=url_of("postgresql"),
        help="A PostgreSQL server (one database per service); default SQLite. State "
        "persists there across restarts.",
    )


def redis_option(dest: str = "redis_url") -> Callable[[Any], Any]:
    return click.option(
        "--redis",
        dest,
        metavar="URL",
        callback=url_of("redis", "rediss", "unix"),
        help="A Redis server; default fakeredis.",
    )


def _component_names() -> list[str]:
    from ecom_harness.harness import PortPlan
    from ecom_harness.specs import load_topology

    return list(PortPlan.for_topology(load_topology()).components)


def parse_real(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``NAME=URL`` pairs naming components of the topology, each once."""
    real: dict[str, str] = {}
    known: list[str] | None = None
    for value in values:
        name, _sep, url = value.partition("=")
        if not name or not is_url(url, ("http", "https"), need_host=True):
            raise click.BadParameter(
                f"'{value}' is not NAME=URL (for example order-svc=http://127.0.0.1:9000)"
            )
        known = known if known is not None else _component_names()
        if name not in known:
            raise click.BadParameter(f"unknown component '{name}' (known: {', '.join(known)})")
        if name in real:
            raise click.BadParameter(f"'{name}' is given twice")
        real[name] = url.rstrip("/")
    return real


def writable_file(_: click.Context, __: click.Parameter, value: Path | None) -> Path | None:
    """A file the command can create or overwrite when it ends: its directory exists
    and is writable, and it is not a directory itself."""
    if value is None:
        return None
    if value.is_dir():
        raise click.BadParameter(f"'{value}' is a directory")
    parent = value.parent if str(value.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"'{value}': the directory '{parent}' does not exist")
    if value.exists() and not os.access(value, os.W_OK):
        raise click.BadParameter(f"'{value}' is not writable")
    if not value.exists() and not os.access(parent, os.W_OK):
        raise click.BadParameter(f"'{value}': the directory '{parent}' is not writable")
    return value


def check_port_range(first: int, count: int, option: str = "--port") -> None:
    """``count`` ports counting up from ``first`` (0: the system picks) must all exist."""
    if first and first + count - 1 > MAX_PORT:
        raise click.BadParameter(
            f"{first} leaves room for {MAX_PORT - first + 1} of the {count} ports needed "
            f"({first}..{first + count - 1}); choose at most {MAX_PORT - count + 1}",
            param_hint=f"'{option}'",
        )
