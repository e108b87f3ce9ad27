"""A fake queue: dispatches are recorded, not enqueued, and can be asserted on."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from typing import Any, Iterator


@dataclasses.dataclass
class DispatchedJob:
    """One recorded dispatch."""

    id: int
    name: str
    payload: dict
    queue: str | None = None
    delay: float | None = None
    unique_key: str | None = None
    tries: int | None = None
    timeout: float | None = None
    batch: str | None = None

    def matches(self, name: str, subset: dict) -> bool:
        return self.name == name and all(k in self.payload and self.payload[k] == v for k, v in subset.items())


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _describe(name: str, subset: dict) -> str:
    return f"{name!r} job with payload including {_show(subset)}" if subset else f"{name!r} job"


class FakeQueue:
    """The jobs dispatched while `fake_queue()` was active, with assertions about them."""

    def __init__(self, validate: bool = True) -> None:
        self.jobs: list[DispatchedJob] = []
        self.validate = validate
        self._ids = itertools.count(1)

    # -- recording (called in place of App.dispatch_many) ------------------------------------

    def record(self, app: Any, items: list, batch: str | None) -> list[int]:
        from ..app import Dispatch

        items = [i if isinstance(i, Dispatch) else Dispatch(*i) for i in items]
        recorded = []
        for item in items:
            payload = dict(item.payload or {})
            queue = item.queue
            if self.validate:
                from ..validation import check_json, check_options

                spec = app.spec(item.name)  # an unknown job raises UnknownJob, as dispatch does
                check_options(item.name, queue=item.queue, delay=item.delay, timeout=item.timeout, tries=item.tries,
                              unique_key=item.unique_key)
                check_json(item.name, payload)
                payload = spec.validate(payload)
                queue = queue or spec.queue
            recorded.append(DispatchedJob(next(self._ids), item.name, payload, queue, item.delay, item.unique_key,
                                          item.tries, item.timeout, batch))
        self.jobs.extend(recorded)  # all or nothing, like the real dispatch_many
        return [job.id for job in recorded]

    # -- queries ---------------------------------------------------------------------------

    def dispatched(self, name: str | None = None, /, **payload_subset: Any) -> list[DispatchedJob]:
        """The recorded jobs, optionally only those named `name` whose payload includes the subset."""
        if name is None:
            return list(self.jobs)
        return [j for j in self.jobs if j.matches(name, payload_subset)]

    def clear(self) -> None:
        self.jobs.clear()

    def _summary(self) -> str:
        if not self.jobs:
            return "no job was dispatched"
        lines = [f"  #{j.id} {j.name} {_show(j.payload)}" + (f" queue={j.queue}" if j.queue else "")
                 for j in self.jobs[:20]]
        more = f"\n  ... and {len(self.jobs) - 20} more" if len(self.jobs) > 20 else ""
        return "dispatched:\n" + "\n".join(lines) + more

    # -- assertions ------------------------------------------------------------------------

    def assert_dispatched(self, name: str, /, *, times: int | None = None, **payload_subset: Any) -> list[DispatchedJob]:
        """Fail unless a job `name` whose payload includes `payload_subset` was dispatched
        (exactly `times` times, if given). Returns the matching jobs."""
        found = self.dispatched(name, **payload_subset)
        what = _describe(name, payload_subset)
        if not found:
            raise AssertionError(f"expected a {what} to be dispatched, but none was; {self._summary()}")
        if times is not None and len(found) != times:
            raise AssertionError(f"expected a {what} to be dispatched {times} time(s), but it was dispatched"
                                 f" {len(found)} time(s); {self._summary()}")
        return found

    def assert_not_dispatched(self, name: str, /, **payload_subset: Any) -> None:
        """Fail if a job `name` (whose payload includes `payload_subset`, if given) was dispatched."""
        found = self.dispatched(name, **payload_subset)
        if found:
            ids = ", ".join(f"#{j.id}" for j in found)
            raise AssertionError(f"expected no {_describe(name, payload_subset)} to be dispatched, but found"
                                 f" {len(found)} ({ids}); {self._summary()}")

    def assert_count(self, expected: int, name: str | None = None) -> None:
        """Fail unless exactly `expected` jobs (named `name`, if given) were dispatched."""
        found = self.dispatched(name) if name else self.jobs
        if len(found) != expected:
            what = f"{name!r} jobs" if name else "jobs"
            raise AssertionError(f"expected {expected} {what} to be dispatched, but {len(found)} were;"
                                 f" {self._summary()}")

    def assert_nothing_dispatched(self) -> None:
        if self.jobs:
            raise AssertionError(f"expected no job to be dispatched, but {len(self.jobs)} were; {self._summary()}")


@contextlib.contextmanager
def fake_queue(validate: bool = True) -> Iterator[FakeQueue]:
    """Record every dispatch made through any photojobs App instead of enqueuing it.

    With `validate` (the default), a dispatch of an unknown job or with a payload that
    does not fit the job's signature raises just as the real dispatch would.
    """
    from ..app import App, Dispatch

    from ..storage import Enqueued

    queue = FakeQueue(validate=validate)
    originals = App.dispatch, App.dispatch_many, App.dispatch_batch

    def dispatch(self: App, name: str, payload: dict | None = None, **options: Any) -> int:
        return queue.record(self, [Dispatch(name, payload, **options)], None)[0]

    def dispatch_many(self: App, items: Any, *, batch: str | None = None, skip_duplicates: bool = False) -> list[int]:
        return queue.record(self, list(items), batch)

    def dispatch_batch(self: App, items: Any, *, batch: str | None = None, skip_duplicates: bool = False) -> Enqueued:
        return Enqueued(queue.record(self, list(items), batch), None)  # type: ignore[arg-type]

    App.dispatch, App.dispatch_many, App.dispatch_batch = dispatch, dispatch_many, dispatch_batch  # type: ignore[method-assign]
    try:
        yield queue
    finally:
        App.dispatch, App.dispatch_many, App.dispatch_batch = originals  # type: ignore[method-assign]
