"""Jobs the tests dispatch (registered through `imports = ["sample_jobs"]`)."""

from __future__ import annotations

import os
import hashlib
import time
from pathlib import Path

from photojobs import PermanentFailure, RetryLater, job


@job("noop")
def noop(n: int = 0) -> None:
    pass


@job("record", context=True)
def record(ctx, tag: str, marker_dir: str = "") -> None:
    """Append this run to a file per tag, so tests can count executions."""
    folder = Path(marker_dir or ctx.storage / "runs")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{tag}.log", "a") as fh:
        fh.write(f"{os.getpid()} {time.time()}\n")


@job("sleepy", timeout=30)
def sleepy(seconds: float, marker: str = "") -> None:
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    if marker:
        Path(marker + ".done").write_text("done")


@job("stuck_in_c", timeout=1, tries=1)
def stuck_in_c(marker: str = "") -> None:
    """Minutes inside one OpenSSL call, which never returns to Python to run a signal handler."""
    if marker:
        Path(marker).write_text(str(os.getpid()))
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 2**31 - 1)


@job("suicide", tries=2, backoff=[0])
def suicide() -> None:
    os.kill(os.getpid(), 9)


@job("flaky", context=True, tries=3, backoff=[0])
def flaky(ctx, fail_times: int) -> None:
    if ctx.attempt <= fail_times:
        raise OSError(f"transient failure {ctx.attempt}")


@job("doomed", tries=5)
def doomed(reason: str = "no") -> None:
    raise PermanentFailure(f"cannot ever work: {reason}")


@job("later", tries=2)
def later() -> None:
    raise RetryLater("not yet", delay=3600)


@job("mark")
def mark(n: int, path: str) -> None:
    """Append n to a file: one O_APPEND write per run, so runs can be counted exactly."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)


@job("break_worker", context=True)
def break_worker(ctx, marker: str) -> None:
    """Close the worker process's own database connection, once (marker): the process then
    fails outside any job, as a child whose database went away would."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        ctx.app.backend.conn.close()
