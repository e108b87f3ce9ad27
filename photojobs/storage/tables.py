"""photojobs' own tables, for the code that must tell them from a caller's."""

from __future__ import annotations

# In foreign-key order (`db copy` copies them so). `workers` and `migrations` are not copied.
TABLES = ("batches", "jobs", "job_errors", "paused_queues", "control", "libraries", "photos", "orders", "order_photos",
          "downloads", "outbox", "schedule_runs", "queue_minutes")


def is_own_table(name: str) -> bool:
    """Whether a missing table (maybe schema-qualified or quoted) is one of photojobs' own,
    so its database needs `init` or `migrate`, not a table of a caller's own SQL."""
    return name.strip().strip('"').rsplit(".", 1)[-1].strip('"') in {*TABLES, "workers", "migrations"}


__all__ = ["TABLES", "is_own_table"]
