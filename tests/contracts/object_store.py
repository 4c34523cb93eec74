"""The contract every ObjectStore passes (jaraco/keyring's BackendBasicTests pattern).

A test class subclasses :class:`ObjectStoreContract` and supplies only the ``store``
fixture, built with the ``clock`` fixture (a :class:`FakeClock`) so that expiry can be
tested without waiting days. ``part_size`` tells the contract how large an upload must be
to span several parts.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from vaultkit.errors import (
    InvalidReferenceError,
    NotFoundError,
    ObjectExpiredError,
    VaultkitError,
)
from vaultkit.storage import ObjectStore, Upload, parse_retention


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def put(store: ObjectStore, data: bytes, retention: str = "7d", now: datetime | None = None,
        chunk: int = 1 << 20) -> str:
    r = parse_retention(retention)
    key = store.new_key(r)
    start = now or datetime.now(timezone.utc)
    with store.open_upload(key, expires_at=start + r.period) as up:
        for i in range(0, len(data), chunk):
            up.write(data[i:i + chunk])
        info = up.commit()
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    return key


class ObjectStoreContract:
    #: Bytes that make an upload span more than one part.
    multipart_size = 3 * 1024 * 1024

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, clock: FakeClock) -> ObjectStore:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_is_an_object_store(self, store: ObjectStore) -> None:
        assert isinstance(store, ObjectStore)
        assert "://" in store.uri
        store.ensure()

    @pytest.mark.parametrize("retention", ["7d", "14d", "30d"])
    def test_keys_are_random_and_only_carry_the_retention(self, store: ObjectStore,
                                                          retention: str) -> None:
        keys = {store.new_key(parse_retention(retention)) for _ in range(50)}
        assert len(keys) == 50
        for key in keys:
            assert re.fullmatch(rf"ttl-{retention}/[0-9a-f]{{32}}", key)

    def test_round_trip_spanning_parts(self, store: ObjectStore, clock: FakeClock) -> None:
        data = os.urandom(self.multipart_size)
        key = put(store, data, now=clock(), chunk=700_001)
        assert b"".join(store.read(key)) == data
        info = store.head(key)
        assert info.key == key and info.size == len(data)
        assert abs((info.expires_at - clock()) - timedelta(days=7)) < timedelta(minutes=5)

    def test_empty_object(self, store: ObjectStore, clock: FakeClock) -> None:
        key = put(store, b"", now=clock())
        assert b"".join(store.read(key)) == b""

    def test_abort_leaves_nothing(self, store: ObjectStore, clock: FakeClock) -> None:
        key = store.new_key(parse_retention("7d"))
        up = store.open_upload(key, expires_at=clock() + timedelta(days=7))
        assert isinstance(up, Upload)
        up.write(os.urandom(1000))
        up.abort()
        with pytest.raises(NotFoundError):
            store.head(key)

    def test_error_inside_the_block_aborts(self, store: ObjectStore, clock: FakeClock) -> None:
        key = store.new_key(parse_retention("14d"))
        with pytest.raises(RuntimeError, match="producer died"):
            with store.open_upload(key, expires_at=clock() + timedelta(days=14)) as up:
                up.write(b"partial")
                raise RuntimeError("producer died")
        with pytest.raises(NotFoundError):
            store.head(key)

    def test_leaving_without_commit_aborts(self, store: ObjectStore, clock: FakeClock) -> None:
        key = store.new_key(parse_retention("7d"))
        with store.open_upload(key, expires_at=clock() + timedelta(days=7)) as up:
            up.write(b"never committed")
        with pytest.raises(NotFoundError):
            store.head(key)

    def test_delete_is_revoke(self, store: ObjectStore, clock: FakeClock) -> None:
        key = put(store, b"zip", now=clock())
        assert store.delete(key) is True
        with pytest.raises(NotFoundError):
            store.head(key)
        with pytest.raises(NotFoundError):
            b"".join(store.read(key))
        assert store.delete(key) is False

    @pytest.mark.parametrize("retention,cap", [("7d", 7), ("14d", 7), ("30d", 7)])
    def test_link_never_outlives_object_or_seven_days(self, store: ObjectStore,
                                                      clock: FakeClock, retention: str,
                                                      cap: int) -> None:
        key = put(store, b"zip", retention, now=clock())
        link = store.link(key, filename="export.zip")
        assert link.expires_at <= store.head(key).expires_at
        assert link.expires_at <= clock() + timedelta(days=cap)
        assert link.expires_at > clock() + timedelta(days=cap) - timedelta(minutes=5)
        short = store.link(key, filename="export.zip", max_lifetime=timedelta(minutes=15))
        assert short.expires_at <= clock() + timedelta(minutes=15)

    def test_link_late_in_retention_ends_with_the_object(self, store: ObjectStore,
                                                         clock: FakeClock) -> None:
        key = put(store, b"zip", "7d", now=clock())
        clock.advance(days=6, hours=20)
        link = store.link(key, filename="export.zip")
        assert link.expires_at <= store.head(key).expires_at
        assert link.expires_at - clock() <= timedelta(hours=4)

    def test_expired_object_is_refused_then_purged(self, store: ObjectStore,
                                                   clock: FakeClock) -> None:
        old = put(store, b"old", "7d", now=clock())
        keep = put(store, b"keep", "30d", now=clock())
        clock.advance(days=7, minutes=10)
        with pytest.raises(ObjectExpiredError):
            b"".join(store.read(old))
        with pytest.raises(ObjectExpiredError):
            store.link(old, filename="export.zip")
        assert store.purge() >= 1
        with pytest.raises(NotFoundError):
            store.head(old)
        assert b"".join(store.read(keep)) == b"keep"

    @pytest.mark.parametrize("key", ["../etc/passwd", "ttl-9d/" + "a" * 32, "ttl-7d/" + "A" * 32,
                                     "ttl-7d/../../x", "user-42/export.zip", ""])
    def test_foreign_keys_are_refused(self, store: ObjectStore, key: str) -> None:
        with pytest.raises(InvalidReferenceError):
            store.delete(key)
        with pytest.raises(InvalidReferenceError):
            store.head(key)
        with pytest.raises(VaultkitError):
            store.open_upload(key, expires_at=datetime.now(timezone.utc))

    def test_repr_has_no_secrets(self, store: ObjectStore) -> None:
        assert "testing" not in repr(store)

    def test_objects_lists_what_was_stored_with_link_expiry(self, store: ObjectStore,
                                                           clock: FakeClock) -> None:
        first = put(store, b"one", "7d", now=clock())
        clock.advance(seconds=2)
        second = put(store, b"two", "30d", now=clock())
        before = {i.key: i for i in store.objects()}
        assert {first, second} <= set(before)
        assert before[second].size == 3 and before[second].link_expires_at is None
        link = store.link(second, filename="export.zip", max_lifetime=timedelta(hours=1))
        after = {i.key: i for i in store.objects()}
        assert after[second].link_expires_at == link.expires_at == store.head(
            second).link_expires_at
        store.delete(first)
        assert first not in {i.key for i in store.objects()}

    def test_key_for_link_names_only_its_own_objects(self, store: ObjectStore,
                                                     clock: FakeClock) -> None:
        key = put(store, b"zip", now=clock())
        link = store.link(key, filename="export.zip")
        assert store.key_for_link(link.url) == key
        for other in ("https://example.com/" + key, "file:///elsewhere/" + key + ".zip",
                      "memory://someone-else/" + key, link.url.replace(key, key[:-1] + "0")
                      .replace("ttl-", "x/ttl-")):
            with pytest.raises(InvalidReferenceError):
                store.key_for_link(other)
