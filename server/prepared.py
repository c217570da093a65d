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

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

_INSERTS: dict[tuple[type[Table], str], tuple[str, tuple[Any, ...]]] = {}


def _insert_statement(table: type[Table], engine_type: str) -> tuple[str, tuple[Any, ...]]:
    """`INSERT … RETURNING` the primary key, naming every column but the key (the database
    numbers the row), with the engine's placeholders; made once per table and engine type."""
    key = (table, engine_type)
    found = _INSERTS.get(key)
    if found is None:
        columns = tuple(c for c in table._meta.columns if not c._meta.primary_key)
        names = ",".join(f'"{c._meta.db_column_name}"' for c in columns)
        if engine_type == "sqlite":
            marks = ",".join("?" for _ in columns)
        else:
            marks = ",".join(f"${n}" for n in range(1, len(columns) + 1))
        primary = table._meta.primary_key._meta.db_column_name
        sql = f'INSERT INTO {table._meta.get_formatted_tablename()} ({names}) VALUES ({marks}) RETURNING "{primary}"'  # noqa: S608 - names from the table's definition
        found = _INSERTS[key] = (sql, columns)
    return found


async def insert_row(row: Table) -> Any:
    """Insert one row, as `await Table.insert(row).returning(pk)` does, and return its primary key
    (also set on `row`). Piccolo builds an insert's text anew from every value's own query
    fragment, which costs more than running it (~0.3 ms for a twenty-column table); this keeps
    the statement and converts the values as Piccolo does."""
    table = type(row)
    primary = table._meta.primary_key
    engine_type = engine().engine_type
    if engine_type == "sqlite" and engine().get_version_sync() < 3.35:  # no RETURNING: Piccolo's way
        rows = await table.insert(row).returning(primary)
        return rows[0][primary._meta.db_column_name]
    sql, columns = _insert_statement(table, engine_type)
    args = [convert_to_sql_value(value=row[c._meta.name], column=c) for c in columns]
    querystring = QueryString(sql.replace("{", "{{").replace("}", "}}"), query_type="insert", table=table)
    querystring._frozen_compiled_strings = (sql, args)  # noqa: SLF001 - as Prepared does
    rows = await engine().run_querystring(querystring)
    value = rows[0][primary._meta.db_column_name]
    setattr(row, primary._meta.name, value)
    row._exists_in_db = True
    return value
