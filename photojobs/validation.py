"""What dispatch refuses before a job is written: anything that could never run.

A payload must be plain JSON that SQLite and every worker read back as it was given:
objects with text keys, lists, text, booleans, null, finite numbers and integers within
SQLite's 64-bit range, nested at most MAX_DEPTH deep. Options: a queue name of letters,
digits, "-" and "_"; a delay that is a finite number of seconds >= 0; a timeout that is a
finite number of seconds > 0; tries a whole number >= 1.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import InvalidPayload, UsageError

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TRIES = 1000
MAX_SECONDS = 10 * 366 * 86400  # ten years: past that a delay or timeout is a typo
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_queue_name(queue: Any, what: str = "queue") -> str:
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise UsageError(f"{what} {queue!r} is not a queue name (1-64 letters, digits, '-' or '_')")
    return queue


def _seconds(name: str, what: str, value: Any, *, zero_ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name}: {what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok) or value > MAX_SECONDS:
        low = ">= 0" if zero_ok else "> 0"
        raise UsageError(f"{name}: {what} must be a finite number of seconds {low} (at most {MAX_SECONDS}),"
                         f" not {value!r}")


def check_options(name: str, *, queue: Any = None, delay: Any = None, timeout: Any = None, tries: Any = None,
                  unique_key: Any = None) -> None:
    """Refuse dispatch options that would make a job that can never run (UsageError)."""
    if queue is not None:
        check_queue_name(queue, f"{name}: queue")
    if delay is not None:
        _seconds(name, "the delay", delay, zero_ok=True)
    if timeout is not None:
        _seconds(name, "the timeout", timeout, zero_ok=False)
    if tries is not None and (isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= MAX_TRIES):
        raise UsageError(f"{name}: tries must be a whole number from 1 to {MAX_TRIES}, not {tries!r}")
    if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
        raise UsageError(f"{name}: the unique key must be non-empty text, not {unique_key!r}")


def check_json(name: str, payload: Any) -> None:
    """Refuse a payload that is not plain JSON (InvalidPayload, naming where). Iterative, so
    a deeply nested value gives this error, not a RecursionError."""
    stack: list[tuple[Any, str, int]] = [(payload, "payload", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidPayload(f"{name}: the payload is nested more than {MAX_DEPTH} levels deep")
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise InvalidPayload(f"{name}: {where} = {value} is beyond the 64-bit integer range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidPayload(f"{name}: {where} is {value!r}, which JSON cannot hold")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidPayload(f"{name}: {where} has a key {key!r} that is not text")
                stack.append((item, f"{where}.{key}" if where != "payload" else key, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        else:
            raise InvalidPayload(f"{name}: {where} is a {type(value).__name__}, which is not JSON"
                                 " (use text, numbers, booleans, null, lists and objects)")


__all__ = ["check_options", "check_json", "check_queue_name", "MAX_DEPTH"]
