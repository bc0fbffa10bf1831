"""Statements compiled once by SQLAlchemy and run on the driver's own connection: the
embedded database's sqlite3 connection (:meth:`Prepared.run`), or PostgreSQL's asyncpg
connection (``_postgres``).

Why: for a statement built once and run thousands of times, SQLAlchemy's ``execute``
redoes on every call what never changes -- the statement's cache key, the compiled
form's lookup, an execution context, the list of bind processors, a cursor result and
its metadata. Under load that was about 22% of the mesh's loop, against about 10% for
SQLite's own work (issue 15). A :class:`Prepared` statement keeps what SQLAlchemy
compiled -- the SQL text, its parameters' order and bind processors, the result's keys
and processors -- so a call only binds, runs and reads. The SQL is SQLAlchemy's, for
the same dialect and the same parameter keys, and the rows are SQLAlchemy's own
``Row`` objects, so a simulator cannot tell the two paths apart (a test runs every
statement of an order both ways and compares).

A list an ``IN`` expands is written out as SQLAlchemy writes it, one statement per
length of the list. What the prepared path does not cover goes through SQLAlchemy as
before (``prepare`` returns None): several parameter sets at once, Python-side column
defaults, values written into the SQL (``literal_execute``), and any engine with event
listeners (a test watching the statements sees them all).
"""

from __future__ import annotations

import functools
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from sqlalchemy import ClauseElement, Dialect, Engine, Executable

__all__ = ["NO_ROWS", "Prepared", "PreparedResult", "StatementCache"]

_REQUIRED = object()  # a parameter the caller must give (no value in the statement)


class PreparedResult(IteratorResult[Any]):
    """SQLAlchemy's result over rows already read, with the statement's ``rowcount``."""

    rowcount: int


class Prepared:
    """One statement, compiled for one dialect and one set of parameter keys."""

    __slots__ = ("_binds", "expanding", "metadata", "reads_only", "rows_shown", "sql")

    def __init__(
        self,
        sql: str,
        binds: Sequence[tuple[str, int | None, Any, Callable[[Any], Any] | None]],
        metadata: SimpleResultMetaData | None,
        expanding: tuple[str, ...] = (),
        *,
        reads_only: bool = False,
        rows_shown: bool = True,
    ):
        self.sql = sql
        # per "?": the parameter's name, its item's index (a list expanded for IN),
        # its value when not given, and its bind processor
        self._binds = binds
        self.metadata = metadata  # None: the statement returns no rows
        self.expanding = expanding  # list parameters, written out item by item
        self.reads_only = reads_only  # a plain SELECT: writes nothing, locks nothing
        # False for the key an INSERT returns because the dialect asked for it (implicit
        # RETURNING, on PostgreSQL): SQLAlchemy's result shows no rows for it either
        self.rows_shown = rows_shown

    def values(self, parameters: Mapping[str, Any]) -> list[Any] | None:
        """The positional values for ``parameters``; None when a required one is
        missing (SQLAlchemy's path then raises its own error)."""
        values = []
        for name, index, default, process in self._binds:
            value = parameters.get(name, default)
            if value is _REQUIRED:
                return None
            if index is not None:
                value = value[index]
            values.append(value if process is None else process(value))
        return values

    def run(self, dbapi: sqlite3.Connection, values: list[Any]) -> PreparedResult:
        """Run on the DB-API connection (inside the caller's transaction); the rows are
        read at once, as :class:`~.EmbeddedDatabase` reads SQLAlchemy's."""
        try:
            cursor = dbapi.execute(self.sql, values)
        except sqlite3.Error as error:  # as SQLAlchemy raises it (IntegrityError...)
            raise DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
        if self.metadata is None:
            result = PreparedResult(NO_ROWS, iter(()))
        else:
            rows = cursor.fetchall()
            result = PreparedResult(self.metadata, iter(rows if self.rows_shown else ()))
        result.rowcount = cursor.rowcount
        return result


NO_ROWS = SimpleResultMetaData([])  # the metadata of a result without rows


def prepare(
    statement: Executable, parameters: Mapping[str, Any], dialect: Dialect
) -> Prepared | None:
    """``statement`` compiled as SQLAlchemy would for ``parameters`` (their keys, and the
    lengths of the lists an ``IN`` expands); None where the prepared path would differ
    from SQLAlchemy's (see the module's doc)."""
    compiled: Any = cast("ClauseElement", statement).compile(
        dialect=dialect, column_keys=sorted(parameters)
    )
    if (
        compiled.insert_prefetch  # Python-side defaults, computed per call
        or compiled.update_prefetch
        or compiled.literal_execute_params  # values written into the SQL
        or not compiled.positional
        or any(bind.callable is not None for bind in compiled.binds.values())
    ):
        return None
    sql, names, processors = compiled.string, compiled.positiontup, compiled._bind_processors
    items: dict[str, tuple[str, int]] = {}  # an expanded list's "?" -> (its list, index)
    expanding = tuple(sorted(bind.key for bind in compiled.post_compile_params))
    if expanding:
        if any(not isinstance(parameters.get(name), list | tuple) for name in expanding):
            return None  # SQLAlchemy's path says what is wrong with it
        state = compiled.construct_expanded_state(dict(parameters))
        sql, names, processors = state.statement, state.positiontup, state.processors
        for name, written in state.parameter_expansion.items():
            items |= {item: (name, index) for index, item in enumerate(written)}
    binds: list[tuple[str, int | None, Any, Callable[[Any], Any] | None]] = []
    for name in names:
        if name in items:
            binds.append((*items[name], _REQUIRED, processors.get(name)))
            continue
        bind = compiled.binds[name]
        default = _REQUIRED if bind.required else bind.value
        binds.append((name, None, default, processors.get(name)))
    metadata = None
    columns = compiled._result_columns
    if columns:
        results = [column.type._cached_result_processor(dialect, None) for column in columns]
        metadata = SimpleResultMetaData(
            [column.keyname for column in columns],
            _processors=results if any(results) else None,
        )
    reads_only = (
        isinstance(statement, Select) and statement._for_update_arg is None and not compiled.ctes
    )
    rows_shown = not compiled.implicit_returning or bool(getattr(statement, "_returning", ()))
    return Prepared(sql, binds, metadata, expanding, reads_only=reads_only, rows_shown=rows_shown)


class StatementCache:
    """Prepared statements by statement and parameter keys, for one engine's dialect.

    A statement is prepared the second time it is seen: one built anew per call is
    compiled by SQLAlchemy's path (and its own cache) instead of once per call here,
    and is only weakly remembered, so it is not kept alive."""

    def __init__(self, engine: Engine):
        self.dialect: Dialect = engine.dialect
        self._dispatch = engine.dispatch
        self._prepared: dict[tuple[Any, ...], Prepared | None] = {}
        self._kept: dict[int, Executable] = {}  # the prepared ones, so their ids stay theirs
        self._once: dict[int, weakref.ref[Executable]] = {}  # seen once
        self._expanding: dict[int, tuple[str, ...]] = {}  # statements with IN lists

    @property
    def watched(self) -> bool:
        """Whether something listens to the statements the engine runs (a test
        collecting them): they then all go through SQLAlchemy, which tells it."""
        dispatch = self._dispatch
        return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)

    def _key(self, ident: int, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        """A statement's parameter keys, and the length of each list it expands (each
        length is SQL of its own)."""
        expanding = self._expanding.get(ident)
        if expanding is None:
            return (ident, tuple(parameters))
        return (ident, tuple(parameters), *(len(parameters.get(n) or ()) for n in expanding))

    def get(self, statement: Executable, parameters: Mapping[str, Any]) -> Prepared | None:
        key = self._key(id(statement), parameters)
        try:
            return self._prepared[key]
        except KeyError:
            pass
        if self._kept.get(id(statement)) is not statement:
            seen = self._once.get(id(statement))
            if seen is None or seen() is not statement:
                forget = functools.partial(self._forget, id(statement))
                self._once[id(statement)] = weakref.ref(statement, forget)
                return None
            del self._once[id(statement)]
            self._kept[id(statement)] = statement
        prepared = prepare(statement, parameters, self.dialect)
        if prepared is not None and prepared.expanding:
            self._expanding[id(statement)] = prepared.expanding
            key = self._key(id(statement), parameters)
        self._prepared[key] = prepared
        return prepared

    def _forget(self, ident: int, gone: weakref.ref[Executable]) -> None:
        if self._once.get(ident) is gone:
            del self._once[ident]
