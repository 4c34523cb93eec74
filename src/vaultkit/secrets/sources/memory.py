"""``memory://NAME``: the public in-memory source, for tests and demos (no server needed).

It can imitate leases, so code that uses the watcher can be tested without Vault::

    store = MemorySource()
    store.put("db", '{"user": "app", "password": "..."}', lease_duration=30, renewable=True)
    secrets = load_secrets({"DB_PW": "memory://db#password"}, sources=[store])
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from ...errors import NotFoundError, UnavailableError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Fetched, Lease


@dataclass
class _Entry:
    value: str
    structured: bool
    lease_duration: float | None
    renewable: bool
    max_ttl: float | None
    version: int


class MemorySource(BaseSource):
    """A process-local secret store. ``down = True`` makes every call fail as *unavailable*."""

    schemes: tuple[str, ...] = ("memory",)
    operation = "get"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # lease id -> (name, hard expiry)
        self._ids = itertools.count(1)
        self.down = False
        #: Counters tests assert on: fetches, renewals, revocations.
        self.calls = {"fetch": 0, "renew": 0, "revoke": 0}

    def put(self, name: str, value: str, *, structured: bool | None = None,
            lease_duration: float | None = None, renewable: bool = False,
            max_ttl: float | None = None) -> None:
        """Store ``value``; JSON objects are detected unless ``structured`` says otherwise."""
        if structured is None:
            structured = value.lstrip().startswith("{")
        with self._lock:
            old = self._entries.get(name)
            self._entries[name] = _Entry(value, structured, lease_duration, renewable, max_ttl,
                                         (old.version + 1) if old else 1)

    def delete(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        with self._lock:
            self.calls["fetch"] += 1
            if self.down:
                raise UnavailableError("memory source is down", source="memory",
                                       reference=unit.display)
            entry = self._entries.get(unit.locator)
            if entry is None:
                raise NotFoundError("no such secret", source="memory", reference=unit.display)
            lease = None
            if entry.lease_duration is not None:
                lease_id = f"memory/{unit.locator}/{next(self._ids)}"
                hard = time.monotonic() + (entry.max_ttl or 10 ** 9)
                self._leases[lease_id] = (unit.locator, hard)
                lease = Lease(lease_id, min(entry.lease_duration, entry.max_ttl or 10 ** 9),
                              entry.renewable)
            return Fetched(Secret(entry.value), structured=entry.structured,
                           version=str(entry.version), lease=lease)

    def renew(self, lease: Lease) -> Lease | None:
        with self._lock:
            self.calls["renew"] += 1
            if self.down:
                raise UnavailableError("memory source is down", source="memory")
            held = self._leases.get(lease.lease_id)
            if held is None or not lease.renewable:
                return None
            name, hard = held
            entry = self._entries.get(name)
            if entry is None or entry.lease_duration is None:
                return None
            # Like Vault, a renewal never extends past the lease's max TTL.
            duration = min(entry.lease_duration, max(0.0, hard - time.monotonic()))
            return Lease(lease.lease_id, duration, True)

    def revoke(self, lease: Lease) -> None:
        with self._lock:
            self.calls["revoke"] += 1
            self._leases.pop(lease.lease_id, None)

    @property
    def active_leases(self) -> int:
        with self._lock:
            return len(self._leases)
