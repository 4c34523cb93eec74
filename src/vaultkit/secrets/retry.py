"""One overall deadline, and capped full-jitter exponential backoff for transient errors only.

Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): the
n-th retry sleeps ``uniform(0, min(cap, base * 2**n))``. Spreading retries
over the whole window is what stops a fleet that booted together from
retrying together (consul-template #1840, vault #24657 show the alternative).

Only errors marked ``retryable`` (unavailable, sealed, throttled, 5xx,
timeouts) are retried. Not-found, access-denied, auth and configuration
errors are returned at once: retrying them only adds load and delay.

>>> policy = RetryPolicy(base=0.1, cap=2.0, max_attempts=5)
>>> 0.0 <= policy.delay(3) <= 0.8
True
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import DeadlineExceededError, VaultkitError

T = TypeVar("T")

_rng = random.SystemRandom()


class Deadline:
    """A point in monotonic time that every call under one ``load_secrets`` shares."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds <= 0:
            raise ValueError("deadline must be positive")
        self._clock = clock
        self.seconds = seconds
        self.at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def __repr__(self) -> str:
        return f"Deadline({self.seconds}s, {self.remaining():.2f}s left)"


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, full-jitter exponential backoff. ``max_attempts`` counts the first try."""

    base: float = 0.1
    cap: float = 2.0
    max_attempts: int = 10

    def delay(self, retry_number: int) -> float:
        return _rng.uniform(0.0, min(self.cap, self.base * (2 ** retry_number)))


def call_with_retry(fn: Callable[[], T], *, policy: RetryPolicy, deadline: Deadline,
                    sleep: Callable[[float], None] = time.sleep,
                    on_retry: Callable[[VaultkitError, float], None] | None = None) -> T:
    """Run ``fn``; retry retryable :class:`VaultkitError`s until attempts or the deadline run out.

    When the deadline would pass during a backoff sleep, the last error is
    raised as is if it already says why (unavailable, sealed), so the report
    keeps its category; when the deadline is already gone before a first
    attempt, :class:`DeadlineExceededError` is raised.
    """
    attempt = 0
    while True:
        if deadline.expired:
            raise DeadlineExceededError("deadline exceeded before the call was made")
        try:
            return fn()
        except VaultkitError as exc:
            attempt += 1
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            pause = policy.delay(attempt - 1)
            if pause >= deadline.remaining():
                exc.message = f"{exc.message} (gave up at the deadline after {attempt} attempts)"
                raise
            if on_retry is not None:
                on_retry(exc, pause)
            sleep(pause)


__all__ = ["Deadline", "RetryPolicy", "call_with_retry"]
