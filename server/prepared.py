"""Hot reads whose SQL Piccolo builds once per engine type, then runs with new values.

Building a select costs Piccolo more than running it on a small indexed read: every call copies
its columns, discovers its joins and bundles the text (~0.2 ms for a plain select, over 1 ms for
one with nine joins). A page that reads fifteen things pays that fifteen times per request.

    @prepared
    def _followers(ticket_id: Any) -> Select:
        return TicketFollower.select(TicketFollower.user).where(TicketFollower.ticket == ticket_id)

    rows = await _followers(42)

`build` is called once per engine type with a `Param` in place of each argument. The statement
Piccolo makes from it is kept, with the query itself: each call binds the values given in the
places of the Params and passes the rows through that query's own result processing, so they
come back exactly as `await build(*values)` would return them (aliases, `output(load_json=True)`,
value types from the driver).

A Param may stand where Piccolo binds a value: a comparison with a column (`Ticket.id == p`) or
a `{}` of raw SQL. Not inside `is_in([...])` (the number of placeholders would vary) nor in
`limit()`/`offset()` (written into the text): those stay constants of `build`. A build whose
statement does not bind every Param, or binds one as something else, fails at its first call.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from piccolo.columns import Column
from piccolo.columns.column_types import JSON, JSONB
from piccolo.columns.defaults.base import Default
from piccolo.query.base import Query
from piccolo.querystring import QueryString
from piccolo.table import Table
from piccolo.utils.sql_values import convert_to_sql_value

from server.db import engine


class Param:
    """The place of the build function's argument number `index` in the statement."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Param({self.index})"


@dataclass(frozen=True, slots=True)
class _Statement:
    query: Query[Any, Any]  # the built query: its result processing is reused
    sql: str  # with the engine's placeholders (`?` or `$n`)
    template: str  # `sql` with braces escaped, for Piccolo's query log
    slots: tuple[Any, ...]  # per placeholder: a Param (a value of the call) or a constant


class Prepared:
    """A read built by Piccolo once per engine type; call it with the values of its Params."""

    def __init__(self, build: Callable[..., Query[Any, Any]], arity: int | None = None) -> None:
        """`arity`: how many values a call takes; by default, how many arguments `build` names."""
        self._build = build
        self._arity = len(inspect.signature(build).parameters) if arity is None else arity
        self._statements: dict[str, _Statement] = {}
        self.__name__ = getattr(build, "__name__", "prepared")
        self.__doc__ = build.__doc__

    def _prepare(self, engine_type: str) -> _Statement:
        query = self._build(*(Param(i) for i in range(self._arity)))
        querystrings = query.querystrings
        if len(querystrings) != 1:
            raise TypeError(f"{self.__name__}: a prepared read must be one statement")
        sql, args = querystrings[0].compile_string(engine_type=engine_type)
        bound = {arg.index for arg in args if isinstance(arg, Param)}
        if bound != set(range(self._arity)) or "Param(" in sql:
            raise TypeError(f"{self.__name__}: every argument must be bound as a value of the statement")
        template = sql.replace("{", "{{").replace("}", "}}")
        return _Statement(query=query, sql=sql, template=template, slots=tuple(args))

    def statement(self) -> _Statement:
        engine_type = engine().engine_type
        found = self._statements.get(engine_type)
        if found is None:
            found = self._statements[engine_type] = self._prepare(engine_type)
        return found

    async def __call__(self, *values: Any) -> Any:
        if len(values) != self._arity:
            raise TypeError(f"{self.__name__} takes {self._arity} values, got {len(values)}")
        statement = self.statement()
        args = [values[slot.index] if type(slot) is Param else slot for slot in statement.slots]
        querystring = QueryString(statement.template)
        querystring._frozen_compiled_strings = (statement.sql, args)  # noqa: SLF001 - Piccolo's own freeze slot
        rows = await engine().run_querystring(querystring)
        return await statement.query._process_results(rows)  # noqa: SLF001 - the same processing as `await query`

    async def first(self, *values: Any) -> Any:
        """The first row, or None (build it with `.limit(1)` when more than one may match)."""
        rows = await self(*values)
        return rows[0] if rows else None


def prepared(build: Callable[..., Query[Any, Any]]) -> Prepared:
    """Decorator: `build(*params)` returns the Piccolo query (see the module's docstring)."""
    return Prepared(build)


# Inserts ------------------------------------------------------------------------------------------
#
# Piccolo builds an insert's text anew from every value's own query fragment, and a row object
# sets every column one by one, which together cost more than running the statement (~0.3 ms for
# a twenty-column table, ~1.5 ms for a new ticket's ten rows). These keep each table's statement
# and fill in defaults and convert values as Piccolo does.

_MISSING: Any = object()
_PLAIN = frozenset({str, int, float, bool, type(None), datetime, date, Decimal, bytes})
MANY_ROWS_PER_STATEMENT = 200  # SQLite binds at most 32,766 values per statement


class _InsertPlan:
    """One table's columns (the primary key aside: the database numbers rows) and how each
    column's value is made when a row leaves it out."""

    def __init__(self, table: type[Table]) -> None:
        self.table = table
        self.columns = tuple(c for c in table._meta.columns if not c._meta.primary_key)
        self.names = {c._meta.name: i for i, c in enumerate(self.columns)}
        self.defaults = tuple(_default_of(c) for c in self.columns)
        self.json = tuple(isinstance(c, JSON | JSONB) for c in self.columns)
        self.primary = table._meta.primary_key._meta.db_column_name
        self._statements: dict[tuple[str, int, str], str] = {}

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        if not values.keys() <= self.names.keys():
            raise ValueError(f"Unrecognized columns - {sorted(values.keys() - self.names.keys())}")
        args = []
        for column, default, is_json in zip(self.columns, self.defaults, self.json, strict=True):
            value = values.get(column._meta.name, _MISSING)
            if value is _MISSING:
                value = default()
            if is_json or type(value) not in _PLAIN:
                value = convert_to_sql_value(value=value, column=column)
            args.append(value)
        return args

    def statement(self, engine_type: str, rows: int, conflict: str) -> str:
        key = (engine_type, rows, conflict)
        found = self._statements.get(key)
        if found is None:
            names = ",".join(f'"{c._meta.db_column_name}"' for c in self.columns)
            width = len(self.columns)
            if engine_type == "sqlite":
                groups = [",".join("?" * width)] * rows
            else:
                groups = [",".join(f"${r * width + n}" for n in range(1, width + 1)) for r in range(rows)]
            values = ",".join(f"({group})" for group in groups)
            on_conflict = f' ON CONFLICT ("{conflict}") DO NOTHING' if conflict else ""
            found = self._statements[key] = (
                f"INSERT INTO {self.table._meta.get_formatted_tablename()} ({names}) VALUES {values}"  # noqa: S608 - names from the table's definition
                f'{on_conflict} RETURNING "{self.primary}"'
            )
        return found


def _default_of(column: Column) -> Callable[[], Any]:
    """What `Table(...)` stores in a column left out: its default (called, if it is made per
    row, such as a timestamp of now). A column without a default gets NULL (the database refuses
    it where the column is NOT NULL)."""
    declared = getattr(column, "default", ...)
    if isinstance(declared, Default) or callable(declared):

        def made() -> Any:
            value = column.get_default_value()
            return value.python() if isinstance(value, Default) else value

        return made
    value = column.get_default_value()
    if type(value) not in _PLAIN:
        made_once = value

        def fresh() -> Any:  # a list or dict default: a copy per row, as Piccolo's own default
            return copy.deepcopy(made_once)

        return fresh
    return lambda: value


_PLANS: dict[type[Table], _InsertPlan] = {}


def _plan(table: type[Table]) -> _InsertPlan:
    found = _PLANS.get(table)
    if found is None:
        found = _PLANS[table] = _InsertPlan(table)
    return found


async def _run_insert(table: type[Table], sql: str, args: list[Any]) -> list[dict[str, Any]]:
    querystring = QueryString(sql.replace("{", "{{").replace("}", "}}"), query_type="insert", table=table)
    querystring._frozen_compiled_strings = (sql, args)  # noqa: SLF001 - as Prepared does
    return await engine().run_querystring(querystring)  # type: ignore[no-any-return]


def _without_returning() -> bool:
    """SQLite before 3.35 has no RETURNING: Piccolo's own way then."""
    return engine().engine_type == "sqlite" and engine().get_version_sync() < 3.35


async def insert(table: type[Table], values: Mapping[str, Any]) -> Any:
    """Insert one row of `table` from {column name: value} and return its primary key, as
    `await table.insert(table(**values)).returning(pk)` would."""
    pks = await insert_many(table, [values])
    return pks[0]


async def insert_many(
    table: type[Table], rows: Sequence[Mapping[str, Any]], *, skip_conflicts_on: Column | None = None
) -> list[Any]:
    """Insert rows of `table` ({column name: value} each; left-out columns take their defaults)
    and return the primary keys of the rows inserted. `skip_conflicts_on`: a unique column; a
    row whose value is there already is left out (`ON CONFLICT DO NOTHING`), as are later rows
    of the same call with the same value."""
    if not rows:
        return []
    plan = _plan(table)
    if _without_returning():
        query = table.insert(*(table(**row) for row in rows))
        if skip_conflicts_on is not None:
            query = query.on_conflict(target=skip_conflicts_on, action="DO NOTHING")
        return [row[plan.primary] for row in await query.returning(table._meta.primary_key)]
    conflict = skip_conflicts_on._meta.db_column_name if skip_conflicts_on is not None else ""
    engine_type = engine().engine_type
    pks: list[Any] = []
    for start in range(0, len(rows), MANY_ROWS_PER_STATEMENT):
        chunk = rows[start : start + MANY_ROWS_PER_STATEMENT]
        if conflict:  # PostgreSQL refuses one statement touching a key twice: the first row wins
            seen: set[Any] = set()
            unique = []
            for row in chunk:
                key = row.get(skip_conflicts_on._meta.name)  # type: ignore[union-attr]
                if key is None or key not in seen:
                    unique.append(row)
                    seen.add(key)
            chunk = unique
        args = [arg for row in chunk for arg in plan.args(row)]
        returned = await _run_insert(table, plan.statement(engine_type, len(chunk), conflict), args)
        pks += [row[plan.primary] for row in returned]
    return pks
