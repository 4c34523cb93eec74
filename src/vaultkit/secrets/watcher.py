"""Keep loaded secrets fresh in a long-running service.

Schedule (after consul-template, whose numbers have years of production behind them):

* a **renewable lease** is renewed at about a third of its duration
  (``duration / 3 * U(0.75, 1)``; the jitter spreads a fleet's renewals);
* when a renewal comes back *shorter* than the lease first granted (the max
  TTL is near) or the lease is **not renewable**, the secret is fetched again at
  ``U(0.85, 0.95)`` of what is left, i.e. before it expires;
* a **static** secret (no lease) is fetched again every ``static_ttl`` seconds
  (jittered down by up to 10%), if ``static_ttl`` is set;
* the **Vault token** is renewed at a third of its TTL; a refused renewal logs in
  again (:meth:`VaultClient.renew_self`).

A failed refresh keeps serving the last value and retries with capped
exponential backoff; once a value is older than ``max_staleness`` (or its lease
has expired), :meth:`SecretWatcher.get` raises :class:`UnavailableError`
instead of handing out something known to be dead. ``on_change`` callbacks get
``{name: Secret}`` for the names whose value changed. ``close()`` stops the
thread and, with ``revoke_on_close=True``, revokes every lease it holds.

>>> watcher = load_secrets(spec).watch(static_ttl=300, max_staleness=3600)   # doctest: +SKIP
>>> watcher.on_change(lambda changed: reconnect(changed))                    # doctest: +SKIP
>>> watcher.get("DB_PASSWORD").reveal()                                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UnavailableError, VaultkitError
from ..secret import Secret
from .refs import Reference
from .retry import Deadline, RetryPolicy
from .sources.base import Fetched, Lease, SecretSource, UnitKey

if TYPE_CHECKING:
    from .loader import LoadedSecrets

logger = logging.getLogger("vaultkit.secrets.watcher")
_rng = random.SystemRandom()

OnChange = Callable[[dict[str, Secret[str]]], None]


@dataclass
class _Unit:
    ref: Reference
    names: list[str]
    fetched: Fetched
    last_ok: float
    granted: float | None  # the lease duration first granted at fetch time
    next_at: float = 0.0
    action: str = "none"  # renew | refetch | none
    failures: int = 0
    history: list[Lease] = field(default_factory=list)


class SecretWatcher:
    """Renews leases, re-fetches expiring and static secrets, and reports changes."""

    def __init__(self, loaded: LoadedSecrets, *, static_ttl: float | None = 300.0,
                 max_staleness: float | None = 3600.0, on_change: OnChange | None = None,
                 revoke_on_close: bool = False, refresh_deadline: float = 10.0,
                 renew_token: bool = True, max_backoff: float = 30.0) -> None:
        self._sources: Mapping[str, SecretSource] = loaded.sources
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[OnChange] = [on_change] if on_change else []
        self._values: dict[str, Secret[str]] = dict(loaded)
        self.static_ttl = static_ttl
        self.max_staleness = max_staleness
        self.revoke_on_close = revoke_on_close
        self.refresh_deadline = refresh_deadline
        self.max_backoff = max_backoff
        #: counters for tests and status output: renewals, refetches, failures, token renewals
        self.stats = {"renew": 0, "refetch": 0, "failure": 0, "token_renew": 0, "change": 0}
        now = time.monotonic()
        self._units: dict[UnitKey, _Unit] = {}
        for name, ref in loaded.plan.refs.items():
            fetched = loaded.fetched.get(ref.unit)
            if fetched is None or name not in self._values:
                continue  # optional and absent, or a default: nothing to refresh
            unit = self._units.get(ref.unit)
            if unit is None:
                granted = fetched.lease.duration if fetched.lease else None
                unit = self._units[ref.unit] = _Unit(ref, [], fetched, fetched.fetched_at,
                                                     granted)
                if fetched.lease:
                    unit.history.append(fetched.lease)
                self._schedule(unit, now)
            unit.names.append(name)
        self._refs = dict(loaded.plan.refs)
        self._vault = self._vault_client() if renew_token else None
        self._token_next: float | None = None
        self._token_ttl: float | None = None

    # -- public API

    def start(self) -> SecretWatcher:
        if self._thread is None:
            self._init_token()
            self._thread = threading.Thread(target=self._run, name="vaultkit-secret-watcher",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop refreshing; with ``revoke_on_close``, revoke every lease still held."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh_deadline + 1)
        if self.revoke_on_close:
            with self._lock:
                units = list(self._units.values())
            for unit in units:
                source = self._sources[unit.ref.scheme]
                for lease in unit.history:
                    try:
                        source.revoke(lease)
                    except VaultkitError as exc:
                        logger.warning("could not revoke a lease of %s: %s", unit.ref.display,
                                       exc.category)
                unit.history.clear()

    def __enter__(self) -> SecretWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_change(self, callback: OnChange) -> OnChange:
        """Register ``callback({name: Secret})``; usable as a decorator."""
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def get(self, name: str) -> Secret[str]:
        """The current value, or :class:`UnavailableError` if it is older than allowed."""
        with self._lock:
            value = self._values[name]
            unit = self._units.get(self._refs[name].unit) if name in self._refs else None
        if unit is not None:
            now = time.monotonic()
            lease = unit.fetched.lease
            if lease is not None and now > lease.expires_at:
                raise UnavailableError("the secret's lease expired and could not be renewed",
                                       reference=unit.ref.display)
            if self.max_staleness is not None and now - unit.last_ok > self.max_staleness:
                raise UnavailableError(
                    f"the secret could not be refreshed for {now - unit.last_ok:.0f}s "
                    f"(max_staleness={self.max_staleness:g}s)", reference=unit.ref.display)
        return value

    __getitem__ = get

    def current(self) -> dict[str, Secret[str]]:
        with self._lock:
            return dict(self._values)

    def refresh_now(self, names: Iterable[str] | None = None) -> dict[str, Secret[str]]:
        """Fetch ``names`` (default: all) again now; return the ones that changed."""
        with self._lock:
            if names is None:
                units = list(self._units.values())
            else:
                keys = {self._refs[n].unit for n in names}
                units = [self._units[k] for k in keys if k in self._units]
        changed: dict[str, Secret[str]] = {}
        for unit in units:
            changed.update(self._refetch(unit, raise_errors=True))
        self._wake.set()
        return changed

    def status(self) -> list[dict[str, Any]]:
        """Per name: age of the value, lease seconds left, next action. Never a value."""
        now = time.monotonic()
        out = []
        with self._lock:
            for unit in self._units.values():
                lease = unit.fetched.lease
                for name in unit.names:
                    out.append({
                        "name": name, "reference": unit.ref.display,
                        "age": round(now - unit.last_ok, 3),
                        "lease_left": round(lease.expires_at - now, 3) if lease else None,
                        "next": unit.action, "next_in": round(unit.next_at - now, 3),
                        "failures": unit.failures,
                    })
        return out

    # -- scheduling

    def _schedule(self, unit: _Unit, now: float) -> None:
        lease = unit.fetched.lease
        if lease is not None and lease.duration > 0:
            left = max(0.0, lease.expires_at - now)
            capped = unit.granted is not None and lease.duration < unit.granted * 0.99
            if lease.renewable and not capped:
                unit.action = "renew"
                unit.next_at = now + lease.duration / 3 * _rng.uniform(0.75, 1.0)
            else:
                unit.action = "refetch"
                unit.next_at = now + left * _rng.uniform(0.85, 0.95)
        elif self.static_ttl:
            unit.action = "refetch"
            unit.next_at = now + self.static_ttl * _rng.uniform(0.9, 1.0)
        else:
            unit.action = "none"
            unit.next_at = float("inf")

    def _backoff(self, unit: _Unit, now: float) -> None:
        unit.failures += 1
        self.stats["failure"] += 1
        pause = _rng.uniform(0.5, 1.0) * min(self.max_backoff, 0.5 * 2 ** unit.failures)
        lease = unit.fetched.lease
        if lease is not None and unit.action == "renew" and lease.expires_at - now < pause * 2:
            unit.action = "refetch"  # too close to expiry to keep trying to renew
        unit.next_at = now + pause

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [u for u in self._units.values() if u.next_at <= now]
                upcoming = min((u.next_at for u in self._units.values()), default=float("inf"))
            if self._token_next is not None:
                upcoming = min(upcoming, self._token_next)
                if self._token_next <= now:
                    self._renew_token()
                    continue
            for unit in due:
                if self._stop.is_set():
                    return
                if unit.action == "renew":
                    self._renew(unit)
                elif unit.action == "refetch":
                    try:
                        self._refetch(unit)
                    except VaultkitError:  # already logged and rescheduled
                        pass
            if due:
                continue
            self._wake.wait(timeout=min(max(0.0, upcoming - time.monotonic()), 60.0))
            self._wake.clear()

    def _renew(self, unit: _Unit) -> None:
        lease = unit.fetched.lease
        if lease is None:  # pragma: no cover - only leased units are scheduled to renew
            return
        source = self._sources[unit.ref.scheme]
        try:
            renewed = source.renew(lease)
        except VaultkitError as exc:
            logger.warning("lease renewal for %s failed (%s); retrying", unit.ref.display,
                           exc.category)
            with self._lock:
                self._backoff(unit, time.monotonic())
            return
        now = time.monotonic()
        if renewed is None:
            logger.info("lease for %s cannot be renewed; fetching again", unit.ref.display)
            try:
                self._refetch(unit)
            except VaultkitError:
                pass
            return
        self.stats["renew"] += 1
        with self._lock:
            unit.fetched = Fetched(unit.fetched.document, structured=unit.fetched.structured,
                                   version=unit.fetched.version, lease=renewed, fetched_at=now)
            unit.last_ok = now
            unit.failures = 0
            self._schedule(unit, now)
        logger.debug("renewed lease for %s (%ss)", unit.ref.display, renewed.duration)

    def _refetch(self, unit: _Unit, *, raise_errors: bool = False) -> dict[str, Secret[str]]:
        from .loader import extract, run_calls

        source = self._sources[unit.ref.scheme]
        calls = source.plan([unit.ref])
        outcomes = run_calls(calls, self._sources, deadline=Deadline(self.refresh_deadline),
                             concurrency=1, retry=RetryPolicy(max_attempts=3))
        outcome = outcomes.get(unit.ref.unit)
        now = time.monotonic()
        if not isinstance(outcome, Fetched):
            err = outcome if isinstance(outcome, VaultkitError) else UnavailableError(
                "no answer", reference=unit.ref.display)
            logger.warning("refreshing %s failed (%s); serving the last value",
                           unit.ref.display, err.category)
            with self._lock:
                self._backoff(unit, now)
            if raise_errors:
                raise err
            return {}
        try:
            new_values = {name: extract(name, self._refs[name], outcome) for name in unit.names}
        except VaultkitError as exc:
            with self._lock:
                self._backoff(unit, now)
            if raise_errors:
                raise
            logger.warning("refreshing %s failed (%s)", unit.ref.display, exc.category)
            return {}
        self.stats["refetch"] += 1
        with self._lock:
            changed = {n: v for n, v in new_values.items() if self._values.get(n) != v}
            self._values.update(new_values)
            unit.fetched = outcome
            unit.last_ok = now
            unit.failures = 0
            if outcome.lease is not None:
                unit.granted = outcome.lease.duration
                unit.history.append(outcome.lease)
            self._schedule(unit, now)
            callbacks = list(self._callbacks)
        if changed:
            self.stats["change"] += 1
            logger.info("secrets changed: %s", ", ".join(sorted(changed)))
            for cb in callbacks:
                try:
                    cb(dict(changed))
                except Exception:  # one bad callback must not stop refreshes
                    logger.exception("an on_change callback failed")
        return changed

    # -- the Vault token

    def _vault_client(self) -> Any:
        for scheme in ("vault", "vault+dyn"):
            if any(u.ref.scheme == scheme for u in self._units.values()):
                source = self._sources.get(scheme)
                client = getattr(source, "client", None)
                if client is not None:
                    return client
        return None

    def _init_token(self) -> None:
        if self._vault is None:
            return
        try:
            info = self._vault.lookup_self()
        except VaultkitError:
            return
        ttl = float(info.get("ttl") or 0)
        if ttl > 0 and info.get("renewable"):
            self._token_ttl = ttl
            self._token_next = time.monotonic() + ttl / 3 * _rng.uniform(0.75, 1.0)

    def _renew_token(self) -> None:
        if self._vault is None:  # pragma: no cover - only scheduled with a client
            return
        try:
            auth = self._vault.renew_self()
            self.stats["token_renew"] += 1
            ttl = float(auth.get("lease_duration") or self._token_ttl or 0)
            if auth.get("relogin"):
                self._init_token()
                return
        except VaultkitError as exc:
            logger.warning("Vault token renewal failed (%s)", exc.category)
            ttl = 10.0
        self._token_next = time.monotonic() + max(1.0, ttl / 3 * _rng.uniform(0.75, 1.0))


__all__ = ["SecretWatcher"]
