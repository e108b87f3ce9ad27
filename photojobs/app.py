"""The library's entry point: `photojobs.connect(...)` returns an App that dispatches jobs."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .backend import Job, NewJob, SqliteBackend
from .errors import InvalidPayload
from .registry import JobSpec, registry
from .settings import Settings, load
from .validation import check_json, check_options


@dataclasses.dataclass
class Dispatch:
    """One job to dispatch, for `App.dispatch_many`."""

    name: str
    payload: dict | None = None
    queue: str | None = None
    delay: float | None = None
    unique_key: str | None = None
    tries: int | None = None
    timeout: float | None = None


@dataclasses.dataclass
class JobContext:
    """What a handler declared with `context=True` receives first."""

    app: "App"
    job: Job

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def db(self) -> sqlite3.Connection:
        return self.app.backend.conn

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def storage(self) -> Path:
        return self.app.settings.storage_path

    def holds_lease(self) -> bool:
        """Whether this attempt still holds its job. Call it inside the transaction that
        makes the job's result visible: False means another attempt owns the job now."""
        return self.job.worker is None or self.app.backend.holds(self.job.id, self.job.worker)


class App:
    """Dispatches jobs and runs workers. Safe to share between a web app's threads: each
    thread gets its own SQLite connection (a connection's transaction is not shareable)."""

    def __init__(self, settings: Settings, backend: SqliteBackend | None = None):
        self.settings = settings
        self._given = backend
        self._local = threading.local()
        self._opened: list[SqliteBackend] = []
        self.registry = registry
        self._loaded = False  # job modules imported

    @property
    def backend(self) -> SqliteBackend:
        if self._given is not None:
            return self._given
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = self._local.backend = SqliteBackend(self.settings)
            self._opened.append(backend)
        return backend

    @property
    def db(self) -> sqlite3.Connection:
        return self.backend.conn

    def close(self) -> None:
        """Close every connection this App opened (call it once its threads are done)."""
        for backend in self._opened:
            backend.close()
        self._opened.clear()
        self._local = threading.local()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; jobs dispatched inside it commit or roll back with your data."""
        return self.backend.transaction()

    def spec(self, name: str) -> JobSpec:
        if not self._loaded:
            self.registry.load(self.settings.imports, str(self.settings.root))
            self._loaded = True
        return self.registry.get(name)

    def _new_job(self, item: Dispatch, batch_id: int | None, now: float) -> NewJob:
        spec = self.spec(item.name)
        check_options(item.name, queue=item.queue, delay=item.delay, timeout=item.timeout, tries=item.tries,
                      unique_key=item.unique_key)
        check_json(item.name, item.payload)
        payload = spec.validate(item.payload)
        unique_key = item.unique_key or (spec.unique(payload) if spec.unique else None)
        return NewJob(item.name, payload, item.queue or spec.queue, now + (item.delay or 0), unique_key,
                      batch_id, item.tries, item.timeout)

    def dispatch(self, name: str, payload: dict | None = None, **options: Any) -> int:
        """Queue one job; returns its id. Options: queue, delay, unique_key, tries, timeout."""
        if self.settings.queue == "sync":
            job_id = self.dispatch_many([Dispatch(name, payload, **options)])[0]
            assert job_id is not None
            return job_id
        return self.backend.enqueue_one(self._new_job(Dispatch(name, payload, **options), None, time.time()))

    def dispatch_many(self, items: Iterable[Dispatch | tuple[str, dict]], *, batch: str | None = None,
                      skip_duplicates: bool = False) -> list[int | None]:
        """Queue many jobs in one transaction, optionally as a named batch.

        With `skip_duplicates`, a job whose unique key is live already is skipped (id None);
        otherwise it refuses the whole call.
        """
        now = time.time()
        items = [i if isinstance(i, Dispatch) else Dispatch(*i) for i in items]
        with self.transaction():
            batch_id = self.backend.create_batch(batch, len(items)) if batch else None
            new = [self._new_job(item, batch_id, now) for item in items]
            ids = self.backend.enqueue(new, skip_duplicates=skip_duplicates)
            if batch_id is not None and None in ids:  # skipped duplicates are not the batch's
                self.backend.conn.execute("UPDATE batches SET total = ? WHERE id = ?",
                                          [sum(i is not None for i in ids), batch_id])
        if self.settings.queue == "sync":
            from .runner import run_inline

            for job_id in ids:
                if job_id is not None:
                    run_inline(self, job_id)
        return ids

    def work(self, options: Any = None, on_progress: Any = None) -> Any:
        """Run a worker in this process (see `photojobs.worker.WorkerOptions`)."""
        from .worker import Worker, WorkerOptions

        return Worker(self.settings, options or WorkerOptions(), on_progress=on_progress).run()


def connect(target: str | os.PathLike | Settings | None = None, **flags: Any) -> App:
    """An App for a config file (`*.toml`), a database path, or Settings; None finds the config."""
    if isinstance(target, Settings):
        return App(target)
    if target is not None and str(target).endswith(".toml"):
        return App(load(config=target, **flags))
    if target is not None:
        flags["db"] = str(target)
    return App(load(**flags))


def parse_payload(text: str | None) -> dict:
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidPayload(f"--payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidPayload("--payload is nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidPayload("--payload must be a JSON object")
    return value
