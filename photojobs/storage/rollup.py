"""The done jobs per queue and minute: how `status` and `monitor` know the last hour's
throughput and run times without reading the finished rows.

`queue_minutes` has one row per queue and minute (Unix time // 60) in which jobs were
marked done: how many, how many had a run time, the sum of those run times, and a
histogram of them in fixed buckets (`d00`..`d57`). An engine writes it in the transaction
that marks jobs done (`record`), deletes it with the done rows it prunes (`prune`), and
reads the last hour from it (`figures`). The statements are portable (named parameters,
`INSERT ... ON CONFLICT (queue, minute) DO UPDATE`), so every engine runs these ones.

Counts and the mean stay exact. The p95 is the middle (geometric) of the bucket that holds
the nearest-rank p95, so it is within that bucket: within a factor of sqrt(2) of the exact
value (1.19 on average), from 0.1 ms to 7.5 hours.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Any, Iterable, Mapping

MINUTE = 60
RATIO = 2 ** 0.5  # each bucket edge is sqrt(2) times the one before
EDGES = tuple(0.0001 * RATIO ** k for k in range(57))  # 0.1 ms .. 26,844 s
BUCKETS = tuple(f"d{i:02d}" for i in range(len(EDGES) + 1))  # d00: under 0.1 ms; d57: 7.5 h and more
TABLE = "queue_minutes"

_TOTALS = ("done", "timed", "seconds")
UPSERT = (f"INSERT INTO {TABLE} (queue, minute, {', '.join(_TOTALS + BUCKETS)})"
          f" VALUES (:queue, :minute, {', '.join(':' + c for c in _TOTALS + BUCKETS)})"
          " ON CONFLICT (queue, minute) DO UPDATE SET "
          + ", ".join(f"{c} = {TABLE}.{c} + excluded.{c}" for c in _TOTALS + BUCKETS))
SUMS = (f"SELECT queue, {', '.join(f'sum({c}) AS {c}' for c in _TOTALS + BUCKETS)} FROM {TABLE}"
        " WHERE minute >= :first GROUP BY queue")
PRUNE = f"DELETE FROM {TABLE} WHERE minute < :minute"
# A run time's bucket in SQL, as `bucket_of` gives it (NULL for no run time). The edges are
# written as Python's repr, which both engines read back as the same double.
BUCKET = ("CASE " + " ".join(f"WHEN duration < {edge!r} THEN {i}" for i, edge in enumerate(EDGES))
          + f" WHEN duration IS NOT NULL THEN {len(EDGES)} END")
# The done rows of the part of a minute the table cannot give, counted per queue and bucket
# by the engine (at most 58 rows a queue, however many jobs finished in that minute).
# `finished_at / 60.0 < :first` is `minute_of(finished_at) < first` in the same IEEE
# division `record` used; the range on finished_at is what reaches the index.
PART = (f"SELECT queue, {BUCKET} AS bucket, count(*) AS done, count(duration) AS timed,"
        " coalesce(sum(duration), 0) AS seconds FROM jobs WHERE status = 'done' AND finished_at >= :since"
        " AND finished_at < :until AND finished_at / 60.0 < :first GROUP BY queue, bucket")


def bucket_of(duration: float) -> int:
    """The histogram bucket of a run time in seconds: 0 (under 0.1 ms) .. 57 (7.5 h and more)."""
    return bisect.bisect_right(EDGES, duration)


def middle_of(bucket: int) -> float:
    """The value that stands for a bucket: the geometric middle of its edges (the open
    ends: half the lowest edge, the highest edge)."""
    if bucket == 0:
        return EDGES[0] / 2
    if bucket >= len(EDGES):
        return EDGES[-1]
    return math.sqrt(EDGES[bucket - 1] * EDGES[bucket])


def minute_of(at: float) -> int:
    return math.floor(at / MINUTE)


@dataclasses.dataclass
class Tally:
    """Done jobs of one queue: counts, the sum of run times and their histogram."""

    done: int = 0
    timed: int = 0
    seconds: float = 0.0
    buckets: list[int] = dataclasses.field(default_factory=lambda: [0] * len(BUCKETS))

    def add(self, duration: float | None) -> None:
        self.done += 1
        if duration is not None:
            self.timed += 1
            self.seconds += duration
            self.buckets[bucket_of(duration)] += 1

    def add_row(self, row: Mapping[str, Any]) -> None:
        """Add a row of `SUMS` (an engine's sum of integers may be a Decimal), or of `PART`
        (one bucket's jobs)."""
        self.done += int(row["done"] or 0)
        self.timed += int(row["timed"] or 0)
        self.seconds += float(row["seconds"] or 0.0)
        if "bucket" in row.keys():
            if row["bucket"] is not None:
                self.buckets[int(row["bucket"])] += int(row["timed"] or 0)
            return
        for i, column in enumerate(BUCKETS):
            self.buckets[i] += int(row[column] or 0)

    def params(self, queue: str, minute: int) -> dict[str, Any]:
        return {"queue": queue, "minute": minute, "done": self.done, "timed": self.timed, "seconds": self.seconds,
                **dict(zip(BUCKETS, self.buckets))}

    def mean(self) -> float | None:
        return self.seconds / self.timed if self.timed else None

    def p95(self) -> float | None:
        """The middle of the bucket that holds the nearest-rank 95th percentile, raised to
        the mean when that bucket is the highest one used and holds the mean: then no run
        time lies above the bucket, so the p95 is at least ~the mean, and a p95 shown under
        the mean (one 98 ms job: p95 86 ms) reads as a bug. Either way it stays in the bucket."""
        if not self.timed:
            return None
        rank, seen = max(1, math.ceil(0.95 * self.timed - 1e-9)), 0
        for bucket, count in enumerate(self.buckets):
            seen += count
            if seen >= rank:
                mean = self.seconds / self.timed
                top = not any(self.buckets[bucket + 1:])
                return max(middle_of(bucket), mean) if top and bucket_of(mean) == bucket else middle_of(bucket)
        return middle_of(len(BUCKETS) - 1)  # not reached while the buckets add up to `timed`


def record(db: Any, at: float, finished: Iterable[tuple[str, float | None]]) -> None:
    """Count jobs marked done at `at` ((queue, run time) pairs): one upsert per queue.
    `db` runs statements with named parameters (a Transaction, or a DB-API connection whose
    paramstyle is named); call it in the transaction that marks them done."""
    tallies: dict[str, Tally] = {}
    for queue, duration in finished:
        tallies.setdefault(queue, Tally()).add(duration)
    minute = minute_of(at)
    for queue, tally in tallies.items():
        db.execute(UPSERT, tally.params(queue, minute))


def prune(db: Any, finished_before: float) -> None:
    """Delete the minutes that ended by `finished_before` (the done rows they count are pruned)."""
    db.execute(PRUNE, {"minute": minute_of(finished_before)})


def figures(db: Any, since: float) -> dict[str, Tally]:
    """The done jobs per queue that finished at `since` or later: whole minutes from the
    table, the part of the first minute from the done rows (`PART`: the engine reads them
    through an index on the done rows' finish time, and counts them per bucket itself)."""
    first = math.ceil(since / MINUTE)
    tallies: dict[str, Tally] = {}
    for row in db.execute(SUMS, {"first": first}).fetchall():
        tallies.setdefault(row["queue"], Tally()).add_row(row)
    if since < first * MINUTE:
        for row in db.execute(PART, {"since": since, "until": first * MINUTE + 1, "first": first}).fetchall():
            tallies.setdefault(row["queue"], Tally()).add_row(row)
    return tallies


def create_table_sql(real: str) -> str:
    """The table, for an engine's migration; `real` is its name for a double ("REAL",
    "double precision"). Keyed (minute, queue): `figures` reads a range of minutes."""
    counts = ", ".join(f"{c} integer NOT NULL DEFAULT 0" for c in ("done", "timed") + BUCKETS)
    return (f"CREATE TABLE {TABLE} (queue text NOT NULL, minute integer NOT NULL, {counts},"
            f" seconds {real} NOT NULL DEFAULT 0, PRIMARY KEY (minute, queue))")


def backfill_sql(minute: str) -> str:
    """Count the done rows there are (a migration's one statement): grouped by queue,
    minute and bucket first, then each bucket's count put in its column. `minute` is the
    engine's expression for `floor(finished_at / 60)` as an integer."""
    columns = ", ".join(f"sum(CASE WHEN bucket = {i} THEN jobs ELSE 0 END)" for i in range(len(BUCKETS)))
    return (f"INSERT INTO {TABLE} (queue, minute, done, timed, seconds, {', '.join(BUCKETS)})"
            f" SELECT queue, minute, sum(jobs), sum(timed), sum(seconds), {columns} FROM"
            f" (SELECT queue, {minute} AS minute, {BUCKET} AS bucket, count(*) AS jobs, count(duration) AS timed,"
            "  coalesce(sum(duration), 0) AS seconds FROM jobs WHERE status = 'done' AND finished_at IS NOT NULL"
            "  GROUP BY 1, 2, 3) AS done GROUP BY queue, minute")
