"""list_shares / revoke / relink on LocalStore and MemoryStore (S3: the integration test)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.object_store import FakeClock
from vaultkit.archive import list_shares, relink, revoke, share, verify_archive
from vaultkit.archive.manage import resolve_share
from vaultkit.errors import InvalidReferenceError, NotFoundError, ObjectExpiredError
from vaultkit.storage import LocalStore, MemoryStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    clock = FakeClock()
    if request.param == "local":
        return LocalStore(tmp_path / "store", clock=clock)
    return MemoryStore(f"manage-{tmp_path.name}", clock=clock)


def test_share_life(store: Any) -> None:
    clock = store.clock
    a = share([("a.txt", [b"a" * 1000])], store=store, retention="30d",
              link_lifetime=timedelta(minutes=5))
    clock.advance(seconds=1)
    b = share([("b.txt", [b"b"])], store=store, retention="7d")
    listed = list_shares(store=store)
    assert [s.id for s in listed] == [a.object_key, b.object_key]  # oldest first
    assert [s.state for s in listed] == ["active", "active"]
    assert listed[0].to_dict()["link_expires_at"] == a.link_expires_at.isoformat()
    assert listed[0].retention == "30d" and listed[0].size == a.size

    clock.advance(minutes=6)
    assert [s.state for s in list_shares(store=store)] == ["link-expired", "active"]
    link = relink(a.link, store=store)  # by the old link
    assert timedelta(days=7) - timedelta(seconds=1) < link.expires_at - clock() \
        <= timedelta(days=7)
    assert list_shares(store=store)[0].state == "active"
    assert list_shares(store=store)[0].link_expires_at == link.expires_at

    clock.advance(days=6, hours=23)
    late = relink(b.object_key, store=store)  # capped by the 7-day retention
    assert late.expires_at == b.expires_at
    clock.advance(hours=2)
    assert [s.state for s in list_shares(store=store)] == ["link-expired", "expired"]
    with pytest.raises(ObjectExpiredError):
        relink(b.object_key, store=store)

    assert revoke(a.object_key.split("/")[1], store=store) is True  # by the bare hex id
    assert revoke(a.link, store=store) is False
    assert [s.id for s in list_shares(store=store)] == [b.object_key]
    assert store.purge() == 1
    assert list_shares(store=store) == []


def test_foreign_references_are_refused(store: Any, tmp_path: Path) -> None:
    r = share([("a.txt", [b"a"])], store=store)
    other = LocalStore(tmp_path / "other") if isinstance(store, MemoryStore) \
        else MemoryStore(f"other-{tmp_path.name}")
    o = share([("a.txt", [b"a"])], store=other)
    for bad in (o.link, "https://example.com/ttl-7d/" + "a" * 32, "../../etc/passwd",
                "ttl-7d/" + "A" * 32, "", r.link.replace("ttl-", "x/ttl-")):
        with pytest.raises(InvalidReferenceError):
            revoke(bad, store=store)
    with pytest.raises(NotFoundError):
        resolve_share("f" * 32, store=store)
    assert revoke("f" * 32, store=store) is False
    assert [s.id for s in list_shares(store=store)] == [r.object_key]


def test_local_list_ignores_foreign_and_half_written_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    r = share([("a.txt", [b"a"])], store=store)
    folder = tmp_path / "ttl-7d"
    (folder / "NOTES.txt").write_text("team notes")
    (folder / "README.json").write_text("{}")
    (folder / ("c" * 32 + ".json")).write_text("{}")  # a sidecar whose data never arrived
    assert [s.id for s in list_shares(store=store)] == [r.object_key]
    assert verify_archive(store.path(r.object_key), r.password)[0].name == "a.txt"
