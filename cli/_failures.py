"""How commands report a failure that is the machine's or the input's, not a bug:
one line on stderr and exit 1 (exit 3, "internal error", is kept for real bugs)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

__all__ = ["EXIT_PROBLEMS", "EXIT_USAGE", "fail", "first_line", "start_failures", "usage_fail"]

EXIT_PROBLEMS, EXIT_USAGE = 1, 2


def start_failures() -> tuple[type[BaseException], ...]:
    """What starting stubs or the mesh can fail with because of the machine or the flags:
    a busy port (OSError), an unusable URL or document (ValueError), a broker that did not
    start or cannot be reached (RuntimeError: TansuStartError, aiokafka's KafkaError), a
    Redis or PostgreSQL server that refuses.

    A function, not a constant: the Redis and SQLAlchemy exception modules load only when
    a command starts something, not for ``--help``.
    """
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, ValueError, RuntimeError, RedisError, SQLAlchemyError)


def first_line(exc: BaseException) -> str:
    """Some errors (SQLAlchemy's) run to several lines; the first one says what."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def fail(message: str) -> NoReturn:
    click.echo(f"ecom-harness: {message}", err=True)
    sys.exit(EXIT_PROBLEMS)


def usage_fail(message: str) -> NoReturn:
    """A usage or set-up error found by a command itself (a bad config file): one line,
    exit 2."""
    click.echo(f"ecom-harness: {message}", err=True)
    sys.exit(EXIT_USAGE)
