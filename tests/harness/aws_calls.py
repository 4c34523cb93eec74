"""Counting boto3 API calls, and seeding moto without feeding the leak canary."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any


class CallCounter:
    """Counts API operations through botocore's ``before-call`` event on a client."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register_first("before-call", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1


@contextlib.contextmanager
def quiet_setup() -> Iterator[None]:
    """Test *setup* writes values through boto3, whose DEBUG log dumps request bodies.

    That is the test planting data, not vaultkit reading it, so it is hidden from
    the leak canary; every vaultkit read below stays fully logged and scanned.
    """
    log = logging.getLogger("botocore.endpoint")
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was
