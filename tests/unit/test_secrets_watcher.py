"""The watcher against the in-memory source: renewals, re-fetch before expiry, staleness."""

from __future__ import annotations

import time

import pytest

from harness.waiting import wait_for
from vaultkit.errors import UnavailableError
from vaultkit.secret import Secret
from vaultkit.secrets import MemorySource, load_secrets


def test_renewable_lease_is_renewed_at_about_a_third() -> None:
    store = MemorySource()
    store.put("db", '{"user": "u", "password": "p1"}', lease_duration=0.9, renewable=True)
    loaded = load_secrets({"PW": "memory://db#password", "USER": "memory://db#user"},
                          sources=[store])
    t0 = time.monotonic()
    with loaded.watch(static_ttl=None, renew_token=False) as watcher:
        wait_for(lambda: store.calls["renew"] >= 1)
        first = time.monotonic() - t0
        wait_for(lambda: store.calls["renew"] >= 3)
    assert 0.15 <= first <= 0.6  # 0.9 / 3 * U(0.75, 1) = 0.225..0.3 s, plus scheduling slack
    assert store.calls["fetch"] == 1  # renewing, not re-reading
    assert watcher.get("PW").reveal() == "p1"


def test_non_renewable_lease_is_refetched_before_expiry_and_reported() -> None:
    store = MemorySource()
    store.put("db", '{"password": "p1"}', lease_duration=0.6, renewable=False)
    loaded = load_secrets({"PW": "memory://db#password"}, sources=[store])
    changes: list[dict[str, Secret[str]]] = []
    watcher = loaded.watch(static_ttl=None, renew_token=False, on_change=changes.append)
    try:
        store.put("db", '{"password": "p2"}', lease_duration=0.6, renewable=False)
        wait_for(lambda: bool(changes))
        # fetched again before the 0.6 s lease ran out, so get() never saw an expired lease
        assert watcher.get("PW").reveal() == "p2"
        assert set(changes[0]) == {"PW"} and changes[0]["PW"].reveal() == "p2"
    finally:
        watcher.close()


def test_lease_capped_by_max_ttl_is_refetched() -> None:
    store = MemorySource()
    store.put("db", '{"password": "p1"}', lease_duration=0.6, renewable=True, max_ttl=1.0)
    loaded = load_secrets({"PW": "memory://db#password"}, sources=[store])
    with loaded.watch(static_ttl=None, renew_token=False) as watcher:
        # The stat is counted just after the fetch returns: wait for both.
        wait_for(lambda: store.calls["fetch"] >= 2 and watcher.stats["refetch"] >= 1, timeout=4)
        assert store.calls["renew"] >= 1


def test_static_secrets_refresh_on_ttl_and_refresh_now() -> None:
    store = MemorySource()
    store.put("api", "k1")
    loaded = load_secrets({"API": "memory://api"}, sources=[store])
    seen: list[str] = []
    with loaded.watch(static_ttl=0.3, renew_token=False) as watcher:
        watcher.on_change(lambda ch: seen.append(ch["API"].reveal()))
        store.put("api", "k2")
        wait_for(lambda: seen == ["k2"])
        store.put("api", "k3")
        changed = watcher.refresh_now(["API"])
        assert changed["API"].reveal() == "k3"
        assert watcher.refresh_now() == {}  # nothing changed since
        status = watcher.status()
        assert status[0]["name"] == "API" and "k3" not in str(status)


def test_serves_stale_until_max_staleness_then_refuses() -> None:
    store = MemorySource()
    store.put("api", "k1")
    loaded = load_secrets({"API": "memory://api"}, sources=[store])
    with loaded.watch(static_ttl=0.1, max_staleness=0.8, renew_token=False,
                      max_backoff=0.1) as watcher:
        store.down = True
        wait_for(lambda: watcher.stats["failure"] >= 1)
        assert watcher.get("API").reveal() == "k1"  # stale but allowed
        with pytest.raises(UnavailableError):
            watcher.refresh_now()
        time.sleep(0.9)
        with pytest.raises(UnavailableError) as info:
            watcher.get("API")
        assert "max_staleness" in str(info.value)
        store.down = False
        wait_for(lambda: watcher.stats["refetch"] >= 1)
        assert watcher.get("API").reveal() == "k1"


def test_revoke_on_close() -> None:
    store = MemorySource()
    store.put("db", '{"password": "p"}', lease_duration=30, renewable=True)
    loaded = load_secrets({"PW": "memory://db#password"}, sources=[store])
    watcher = loaded.watch(static_ttl=None, renew_token=False, revoke_on_close=True)
    assert store.active_leases == 1
    watcher.close()
    assert store.active_leases == 0 and store.calls["revoke"] == 1


def test_failing_callback_does_not_stop_refreshes() -> None:
    store = MemorySource()
    store.put("api", "k1")
    loaded = load_secrets({"API": "memory://api"}, sources=[store])

    def bad(changed: dict[str, Secret[str]]) -> None:
        raise RuntimeError("callback bug")

    with loaded.watch(static_ttl=0.2, renew_token=False, on_change=bad) as watcher:
        store.put("api", "k2")
        wait_for(lambda: watcher.stats["change"] >= 1)
        store.put("api", "k3")
        wait_for(lambda: watcher.stats["change"] >= 2)
        assert watcher.get("API").reveal() == "k3"
