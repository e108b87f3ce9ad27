"""The job the queue bench runs (imported by the worker through `imports`)."""

from photojobs import job


@job("bench_noop")
def bench_noop(n: int = 0) -> None:
    pass
