"""Start-up cost of a worker child per multiprocessing start method.

    python bench/start_methods.py [fork forkserver spawn]

Times Process.start() until the child has imported the worker and the built-in job
modules (what a worker child does first), 8 children per method, one after another, with
the supervisor's modules already imported (as `photojobs work` has them). forkserver
preloads the same modules as photojobs' own worker does.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time


def child(conn) -> None:
    import photojobs.worker_child  # noqa: F401
    from photojobs.registry import registry

    registry.load(())
    conn.send(time.perf_counter())
    conn.close()


def measure(method: str, count: int = 8) -> list[float]:
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["photojobs.worker_child", "photojobs.jobs"])
    times = []
    for _ in range(count):
        receive, send = ctx.Pipe(duplex=False)
        started = time.perf_counter()
        process = ctx.Process(target=child, args=(send,))
        process.start()
        ready = receive.recv()
        process.join()
        times.append((ready - started) * 1000)
    return times


if __name__ == "__main__":
    import photojobs.jobs  # noqa: F401
    import photojobs.worker_child  # noqa: F401

    for method in sys.argv[1:] or ["fork", "forkserver", "spawn"]:
        times = measure(method)
        print(f"{method:10s} first {times[0]:7.1f} ms, then median {statistics.median(times[1:]):7.1f} ms")
