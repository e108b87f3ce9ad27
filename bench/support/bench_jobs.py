"""The job the queue bench runs (imported by the worker through `imports`)."""

from photojobs import job


@job("bench_noop")
def bench_noop(n: int = 0) -> None:
    pass


@job("bench_started", context=True)
def bench_started(ctx, log: str) -> None:
    """Note when this job started (the pickup-latency bench)."""
    import time

    with open(log, "a") as fh:
        fh.write(f"{ctx.job.id} {time.time()}\n")
