"""MemoryStore and LocalStore pass the ObjectStore contract; LocalStore's own guarantees."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from contracts.object_store import FakeClock, ObjectStoreContract, put
from vaultkit.errors import ConfigError, InvalidReferenceError, ObjectExpiredError, StorageError
from vaultkit.storage import (
    LocalStore,
    MemoryStore,
    get_store,
    link_expiry,
    parse_retention,
    redact_url,
)
from vaultkit.storage.base import MAX_LINK_LIFETIME
from vaultkit.storage.s3 import S3Store, content_disposition


class TestMemoryStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> MemoryStore:
        return MemoryStore("contract", clock=clock)


class TestLocalStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "exports", clock=clock)


def test_local_layout_modes_and_sidecar(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(tmp_path / "exports", clock=clock)
    key = put(store, b"PK-zip-bytes", "14d", now=clock())
    root = tmp_path / "exports"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    data = root / f"{key}.zip"
    meta = root / f"{key}.json"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert stat.S_IMODE(meta.stat().st_mode) == 0o600
    side = json.loads(meta.read_text())
    assert set(side) == {"version", "key", "size", "sha256", "created_at", "expires_at",
                         "link_expires_at"}
    assert side["link_expires_at"] is None
    assert datetime.fromisoformat(side["expires_at"]) == clock() + timedelta(days=14)
    link = store.link(key, filename="x.zip")
    assert link.url == data.as_uri() and link.url.startswith("file://")
    assert datetime.fromisoformat(json.loads(meta.read_text())["link_expires_at"]) \
        == link.expires_at
    assert sorted(p.name for p in (root / "ttl-14d").iterdir()) == sorted([data.name, meta.name])


def test_local_upload_full_disk_leaves_nothing(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "s")
    key = store.new_key(parse_retention("7d"))
    up = store.open_upload(key, expires_at=datetime.now(timezone.utc) + timedelta(days=7))

    class Full:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

    up._fh = Full(up._fh)  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="No space left"):
        with up:
            up.write(b"x" * 100)
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_local_purge_cleans_orphans_and_keeps_foreign_files(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(tmp_path, clock=clock)
    key = put(store, b"a", now=clock())
    folder = tmp_path / "ttl-7d"
    orphan_data = folder / ("b" * 32 + ".zip")
    orphan_data.write_bytes(b"no sidecar")
    orphan_meta = folder / ("c" * 32 + ".json")
    orphan_meta.write_text("{}")
    young_meta = folder / ("e" * 32 + ".json")  # a commit about to rename its data in
    young_meta.write_text("{}")
    os.utime(orphan_meta, (0, 0))
    stale = folder / (".%s.part" % ("d" * 32))
    stale.write_bytes(b"crashed")
    os.utime(stale, (0, 0))
    foreign = folder / "README.json"
    foreign.write_text("{}")
    old_tmp = folder / f".{'f' * 32}.json.k2j_x9qa.tmp"  # a crashed sidecar write
    old_tmp.write_text("{")
    os.utime(old_tmp, (0, 0))
    young_tmp = folder / f".{'9' * 32}.json.a8f3kd0z.tmp"  # a sidecar being written now
    young_tmp.write_text("{")
    notes = folder / "NOTES.txt"
    notes.write_text("team notes")
    os.utime(notes, (0, 0))
    assert store.purge() == 0
    assert not orphan_data.exists() and not orphan_meta.exists() and not stale.exists()
    assert foreign.exists() and young_meta.exists() and notes.exists() and young_tmp.exists()
    assert not old_tmp.exists()
    assert b"".join(store.read(key)) == b"a"


def test_expired_local_object_is_not_served_even_via_path(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(tmp_path, clock=clock)
    key = put(store, b"a", now=clock())
    assert store.path(key).exists()
    clock.advance(days=8)
    with pytest.raises(ObjectExpiredError):
        store.path(key)


# --- link-expiry arithmetic (moto enforces none of it, so it is pinned here) -------------

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("days,expected", [(7, timedelta(days=7)), (14, timedelta(days=7)),
                                           (30, timedelta(days=7))])
def test_link_capped_at_seven_days(days: int, expected: timedelta) -> None:
    assert link_expiry(T0, T0 + timedelta(days=days)) - T0 == expected


def test_link_capped_by_object_expiry() -> None:
    assert link_expiry(T0, T0 + timedelta(hours=3)) == T0 + timedelta(hours=3)


def test_link_capped_by_credentials_expiry() -> None:
    creds = T0 + timedelta(minutes=50)
    assert link_expiry(T0, T0 + timedelta(days=7), credentials_expire_at=creds) == creds


def test_link_capped_by_caller() -> None:
    got = link_expiry(T0, T0 + timedelta(days=30), max_lifetime=timedelta(minutes=15))
    assert got == T0 + timedelta(minutes=15)
    assert link_expiry(T0, T0 + timedelta(days=30), max_lifetime=timedelta(days=60)) \
        == T0 + MAX_LINK_LIFETIME


def test_link_refused_when_too_short() -> None:
    with pytest.raises(ObjectExpiredError):
        link_expiry(T0, T0 + timedelta(seconds=30))
    with pytest.raises(ObjectExpiredError):
        link_expiry(T0, T0 - timedelta(days=1))
    with pytest.raises(StorageError, match="credentials"):
        link_expiry(T0, T0 + timedelta(days=7), credentials_expire_at=T0 + timedelta(seconds=5))


def test_redact_url_hides_signature_and_token() -> None:
    url = ("https://b.s3.amazonaws.com/ttl-7d/abc?response-content-disposition=attachment"
           "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2024&X-Amz-Date=20240101"
           "&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Security-Token=TOKENVALUE"
           "&X-Amz-Signature=deadbeefcafe")
    red = redact_url(url)
    assert "deadbeefcafe" not in red and "TOKENVALUE" not in red and "AKIA" not in red
    assert "X-Amz-Expires=604800" in red and red.startswith("https://b.s3.amazonaws.com/ttl-7d/")


@pytest.mark.parametrize("value,days", [("7d", 7), ("14D", 14), (30, 30), ("30", 30)])
def test_parse_retention(value: object, days: int) -> None:
    assert parse_retention(value).days == days  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1d", "365d", "", "7 days", "-7d"])
def test_bad_retention(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_retention(value)


def test_get_store_by_scheme(tmp_path: Path) -> None:
    assert isinstance(get_store(f"file://{tmp_path}"), LocalStore)
    assert get_store("memory://x") is get_store("memory://x")
    s3 = get_store("s3://bucket/some/prefix")
    assert isinstance(s3, S3Store)
    assert s3.prefix == "some/prefix/" and s3.uri == "s3://bucket/some/prefix"
    assert [r["Filter"]["Prefix"] for r in s3.lifecycle_rules()] == [
        "some/prefix/ttl-7d/", "some/prefix/ttl-14d/", "some/prefix/ttl-30d/"]
    for bad in ("ftp://x", "nope", "s3://", "memory://", "file://"):
        with pytest.raises(InvalidReferenceError):
            get_store(bad)


def test_content_disposition_is_rfc6266() -> None:
    assert content_disposition("export.zip") == (
        "attachment; filename=\"export.zip\"; filename*=UTF-8''export.zip")
    assert "filename*=UTF-8''%C3%BCber.zip" in content_disposition("über.zip")
