"""Polling for a condition with a timeout (subprocesses and background threads in tests)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(cond: Callable[[], bool], timeout: float = 8.0, interval: float = 0.02) -> None:
    """Return once ``cond()`` is true; fail the test if it is not within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:g}s")
