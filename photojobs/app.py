"""The library's entry point: `photojobs.connect(...)` returns an App that dispatches jobs."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, ContextManager, Iterable

from .context import JobContext  # noqa: F401 - photojobs.app.JobContext, as before
from .errors import InvalidPayload
from .registry import JobSpec, registry
from .settings import Settings, load
from .storage import Backend, Enqueued, NewJob, Transaction, open_backend
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


class App:
    """Dispatches jobs and runs workers. Safe to share between a web app's threads: each
    thread gets its own database connection (a connection's transaction is not shareable)."""

    def __init__(self, settings: Settings, backend: Backend | None = None):
        self.settings = settings
        self._given = backend
        self._local = threading.local()
        self._opened: list[Backend] = []
        self.registry = registry
        self._loaded = False  # job modules imported

    @property
    def backend(self) -> Backend:
        if self._given is not None:
            return self._given
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = self._local.backend = open_backend(self.settings)
            self._opened.append(backend)
        return backend

    @property
    def db(self) -> Any:
        """The engine's own DB-API connection (prefer `transaction()`'s `tx.execute`)."""
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

    def transaction(self) -> ContextManager[Transaction]:
        """A write transaction; jobs dispatched inside it commit or roll back with your data.

        `tx.execute(sql, {"name": value})` takes named `:name` parameters (every engine
        does); `tx.connection` is the engine's own DB-API connection."""
        return self.backend.transaction()

    def spec(self, name: str) -> JobSpec:
        if not self._loaded:
            self.registry.load(self.settings.imports, str(self.settings.root))
            self._loaded = True
        return self.registry.get(name)

    def _new_job(self, item: Dispatch, now: float) -> NewJob:
        spec = self.spec(item.name)
        check_options(item.name, queue=item.queue, delay=item.delay, timeout=item.timeout, tries=item.tries,
                      unique_key=item.unique_key)
        check_json(item.name, item.payload)
        payload = spec.validate(item.payload)
        unique_key = item.unique_key or (spec.unique(payload) if spec.unique else None)
        return NewJob(item.name, payload, item.queue or spec.queue, now + (item.delay or 0), unique_key,
                      None, item.tries, item.timeout)

    def dispatch(self, name: str, payload: dict | None = None, **options: Any) -> int:
        """Queue one job; returns its id. Options: queue, delay, unique_key, tries, timeout."""
        if self.settings.queue == "sync":
            job_id = self.dispatch_many([Dispatch(name, payload, **options)])[0]
            assert job_id is not None
            return job_id
        return self.backend.enqueue_one(self._new_job(Dispatch(name, payload, **options), time.time()))

    def dispatch_many(self, items: Iterable[Dispatch | tuple[str, dict]], *, batch: str | None = None,
                      skip_duplicates: bool = False) -> list[int | None]:
        """Queue many jobs in one transaction, optionally as a named batch; their ids.

        With `skip_duplicates`, a job whose unique key is live already is skipped (id None);
        otherwise it refuses the whole call.
        """
        return self.dispatch_batch(items, batch=batch, skip_duplicates=skip_duplicates).ids

    def dispatch_batch(self, items: Iterable[Dispatch | tuple[str, dict]], *, batch: str | None = None,
                       skip_duplicates: bool = False) -> Enqueued:
        """`dispatch_many` that also says which batch it made (`.batch_id`; None when
        every job was a skipped duplicate)."""
        now = time.time()
        new = [self._new_job(i if isinstance(i, Dispatch) else Dispatch(*i), now) for i in items]
        with self.transaction() as tx:
            made = self.backend.enqueue(new, batch=batch, skip_duplicates=skip_duplicates)
            if self.settings.queue == "sync":
                tx.after_commit(lambda: self._run_inline(made.ids))
        return made

    def _run_inline(self, ids: list[int | None]) -> None:
        """Sync mode, once the dispatch's outermost transaction committed: run the jobs
        through the worker's code path. A failed job is recorded, then raised."""
        from .runner import run_inline

        for job_id in ids:
            if job_id is not None:
                run_inline(self, job_id)

    def work(self, options: Any = None, on_progress: Any = None) -> Any:
        """Run a worker in this process (see `photojobs.worker.WorkerOptions`)."""
        from .worker import Worker, WorkerOptions

        return Worker(self.settings, options or WorkerOptions(), on_progress=on_progress, app_class=type(self)).run()


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
