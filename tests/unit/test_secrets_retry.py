"""Capped full-jitter backoff, the shared deadline, and which errors are retried."""

from __future__ import annotations

import pytest

from vaultkit.errors import (
    AccessDeniedError,
    DeadlineExceededError,
    NotFoundError,
    UnavailableError,
)
from vaultkit.secrets import Deadline, RetryPolicy
from vaultkit.secrets.retry import call_with_retry


def test_delay_is_capped_full_jitter() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0)
    delays = [policy.delay(10) for _ in range(200)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert max(delays) > 0.5 and min(delays) < 0.5  # spread over the whole window
    assert all(0 <= policy.delay(0) <= 0.1 for _ in range(50))


def test_transient_errors_are_retried_until_success() -> None:
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise UnavailableError("down")
        return "ok"

    sleeps: list[float] = []
    assert call_with_retry(flaky, policy=RetryPolicy(), deadline=Deadline(10),
                           sleep=sleeps.append) == "ok"
    assert len(attempts) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("exc", [NotFoundError("x"), AccessDeniedError("x")])
def test_not_found_and_denied_are_never_retried(exc: Exception) -> None:
    attempts = []

    def fail() -> None:
        attempts.append(1)
        raise exc

    with pytest.raises(type(exc)):
        call_with_retry(fail, policy=RetryPolicy(), deadline=Deadline(10), sleep=lambda s: None)
    assert attempts == [1]


def test_attempts_are_capped() -> None:
    attempts = []

    def fail() -> None:
        attempts.append(1)
        raise UnavailableError("down")

    with pytest.raises(UnavailableError):
        call_with_retry(fail, policy=RetryPolicy(max_attempts=4), deadline=Deadline(10),
                        sleep=lambda s: None)
    assert len(attempts) == 4


def test_deadline_stops_retries_and_keeps_the_category() -> None:
    now = [0.0]
    deadline = Deadline(1.0, clock=lambda: now[0])

    def fail() -> None:
        now[0] += 0.6
        raise UnavailableError("sealed")

    with pytest.raises(UnavailableError) as info:
        call_with_retry(fail, policy=RetryPolicy(base=5, cap=5), deadline=deadline,
                        sleep=lambda s: None)
    assert info.value.category == "unavailable"
    assert "deadline" in str(info.value)


def test_expired_deadline_before_first_call() -> None:
    now = [0.0]
    deadline = Deadline(1.0, clock=lambda: now[0])
    now[0] = 2.0
    with pytest.raises(DeadlineExceededError):
        call_with_retry(lambda: None, policy=RetryPolicy(), deadline=deadline)
