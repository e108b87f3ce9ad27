"""What every engine's open transaction does the same way: hooks run after the outermost
commit (never after a rollback), savepoints, and statements whose rows are read at once.

An engine subclasses `OpenTransaction` with its own `execute`/`executemany` (named
`:name` parameters, answered with a `Result`); storage/sqlite.py and storage/postgres.py do.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterable, Iterator

from .base import Params

_savepoints = itertools.count(1)


class Result:
    """A statement's rows, all read at once: a SELECT left half-read would keep its read
    transaction open (on SQLite that connection would go on seeing an old snapshot), and a
    pooled connection goes back to its pool right after the statement."""

    __slots__ = ("rows", "rowcount", "lastrowid", "description", "_at")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None = None,
                 description: Any = None) -> None:
        self.rows, self.rowcount, self.lastrowid, self.description = rows, rowcount, lastrowid, description
        self._at = 0

    @classmethod
    def read(cls, cursor: Any) -> "Result":
        """Everything a DB-API cursor holds, read now."""
        rows = cursor.fetchall() if cursor.description is not None else []
        return cls(rows, cursor.rowcount, cursor.lastrowid, cursor.description)

    def fetchone(self) -> Any:
        if self._at >= len(self.rows):
            return None
        self._at += 1
        return self.rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        rest, self._at = self.rows[self._at:], len(self.rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class OpenTransaction:
    """The open write transaction on `connection` (the engine's DB-API connection): hooks
    that run after the outermost commit, savepoints. Engines add `execute`/`executemany`."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Params = ()) -> Result:
        raise NotImplementedError  # the engine's: named `:name` parameters, rows read at once

    def executemany(self, sql: str, rows: Iterable[Params]) -> Result:
        raise NotImplementedError

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        name = f"photojobs_{next(_savepoints)}"
        hooks = len(self._after_commit)
        self.connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.connection.execute(f"ROLLBACK TO {name}")
            self.connection.execute(f"RELEASE {name}")
            del self._after_commit[hooks:]  # what the rolled-back block dispatched never runs
            raise
        self.connection.execute(f"RELEASE {name}")

    def run_after_commit(self) -> None:
        """Run the hooks in order; the first one's exception is raised after all ran."""
        hooks, self._after_commit = self._after_commit, []
        first: BaseException | None = None
        for action in hooks:
            try:
                action()
            except BaseException as exc:  # noqa: BLE001 - raised below, once the others ran
                first = first or exc
        if first is not None:
            raise first


__all__ = ["OpenTransaction", "Result"]
