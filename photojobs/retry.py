"""When to try a failed job again: a pure function of the attempt number."""

from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from .errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Delays between attempts: a fixed list (the last repeats), or exponential with jitter."""

    delays: tuple[float, ...] = ()
    base: float = 10.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.25  # +/- this fraction, so jobs failed together do not retry together

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        if self.delays:
            return self.delays[min(attempt, len(self.delays)) - 1]
        raw = min(self.cap, self.base * self.factor ** (attempt - 1))
        spread = (rand or random).uniform(-self.jitter, self.jitter)
        return max(0.0, raw * (1 + spread))


DEFAULT_BACKOFF = Backoff()


def parse_backoff(value: Backoff | Sequence[float] | float | str | None) -> Backoff:
    """Accept a Backoff, a list of seconds, a number of seconds, or "exponential"."""
    if value is None or value == "exponential":
        return DEFAULT_BACKOFF
    if isinstance(value, Backoff):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return Backoff(delays=(float(value),))
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        return Backoff(delays=tuple(float(v) for v in value))
    raise ConfigError(f"backoff must be a list of seconds, a number or 'exponential', not {value!r}")
