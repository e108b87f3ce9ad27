"""Running the portable SQL on psycopg: `:name` (and `?`) placeholders, rows read by
name or position like sqlite3.Row, results read before the connection goes back to the pool."""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Any, Iterator, Mapping, Sequence

import psycopg

from ..errors import SchemaTooOld
from .pg_connect import BYTES_MARK, classify, masked
from .tables import is_own_table
from .transaction import Result

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_]\w*)|%|\?")


@functools.lru_cache(maxsize=1024)
def pyformat(sql: str, named: bool) -> str:
    """`:name` -> `%(name)s` (or `?` -> `%s`), `%` -> `%%`; quoted text and `::` casts kept."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group(1) is not None:
            return f"%({match.group(1)})s" if named else token
        if token == "%":
            return "%%"
        if token == "?":
            return token if named else "%s"
        return token

    return _TOKENS.sub(swap, sql)


class Row:
    """One row: `row["name"]` or `row[0]`, `keys()`, `dict(row)`, like sqlite3.Row."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: tuple, index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (Row, tuple)) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


def _unmarked(value: Any) -> Any:
    if value.__class__ is str and value.startswith(BYTES_MARK):
        return bytes.fromhex(value[len(BYTES_MARK):])
    return value


def row_factory(cursor: psycopg.Cursor) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        return Row(tuple(_unmarked(v) for v in values), index)

    return make


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """psycopg's environment errors as PhotojobsErrors; the rest (a unique key, a bug) as they are."""
    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        missing = re.search(r'relation "([^"]+)"', exc.diag.message_primary or "")
        if missing and not is_own_table(missing.group(1)):
            raise  # a table of the caller's own SQL (`tx.execute`), not a schema to migrate
        raise SchemaTooOld(f"database {masked(url)} has no photojobs schema ({exc.diag.message_primary})",
                           hint="run `photojobs init` or `photojobs migrate`") from None
    except (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout, psycopg.InterfaceError) as exc:
        raise (classify(exc, url) or exc) from None


def run(conn: psycopg.Connection, url: str, sql: str, params: Mapping[str, Any] | Sequence[Any] | None) -> Result:
    """One statement on `conn`, its rows read at once."""
    named = isinstance(params, Mapping)
    with translated(url):
        cursor = conn.cursor(row_factory=row_factory)
        cursor.execute(pyformat(sql, named), params if params is not None else ())
        rows = cursor.fetchall() if cursor.description is not None else []
        return Result(rows, cursor.rowcount)


def run_many(conn: psycopg.Connection, url: str, sql: str, rows: list[Any], *, returning: bool = False) -> Result:
    """The statement once per row, pipelined (one round trip); with `returning`, each
    row's first result row (None for a row that returned nothing, e.g. a skipped duplicate)."""
    if not rows:
        return Result([], 0)
    named = isinstance(rows[0], Mapping)
    with translated(url):
        cursor = conn.cursor(row_factory=row_factory)
        cursor.executemany(pyformat(sql, named), rows, returning=returning)
        if not returning:
            return Result([], cursor.rowcount)
        results: list[Any] = []
        while True:
            results.append(cursor.fetchone())
            if not cursor.nextset():
                break
        return Result(results, len(results))


__all__ = ["Result", "Row", "pyformat", "row_factory", "run", "run_many", "translated"]
