"""share/revoke/relink and the chat-log export on memory and local stores; the leak canary."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.object_store import FakeClock
from vaultkit import audit
from vaultkit.archive import (
    ShareResult,
    bot_messages,
    export_chat_log,
    relink,
    revoke,
    share,
    verify_archive,
)
from vaultkit.errors import (
    ArchiveError,
    NotFoundError,
    ObjectExpiredError,
    StorageError,
    UnsafeEntryNameError,
)
from vaultkit.storage import LocalStore, MemoryStore


def fetch(store: Any, key: str) -> bytes:
    return b"".join(store.read(key))


def test_share_returns_an_immutable_result(tmp_path: Path) -> None:
    clock = FakeClock()
    store = MemoryStore("share-a", clock=clock)
    result = share([("a.txt", [b"hello"])], store=store, retention="14d", filename="mine.zip")
    assert isinstance(result, ShareResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.link = "x"  # type: ignore[misc]
    assert result.retention == "14d" and result.filename == "mine.zip"
    assert result.object_key.startswith("ttl-14d/")
    assert result.expires_at == (clock() + timedelta(days=14)).replace(microsecond=0)
    assert result.link_expires_at <= clock() + timedelta(days=7)
    data = fetch(store, result.object_key)
    assert len(data) == result.size
    import hashlib

    assert hashlib.sha256(data).hexdigest() == result.sha256
    assert verify_archive(io.BytesIO(data), result.password)[0].name == "a.txt"


def test_repr_masks_password_and_signature() -> None:
    store = MemoryStore("share-b")
    r = share([("a", [b"1"])], store=store)
    signed = dataclasses.replace(
        r, link="https://b.s3.amazonaws.com/ttl-7d/x?X-Amz-Expires=60&X-Amz-Signature=abcdef12")
    for text in (repr(signed), str(signed), json.dumps(signed.to_dict())):
        assert r.password.reveal() not in text
        assert "abcdef12" not in text
        assert "X-Amz-Expires=60" in text
    assert signed.to_dict(reveal=True)["password"] == r.password.reveal()


def test_local_share_link_and_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(tmp_path / "store", clock=clock)
    r = share([("x.txt", [b"x" * 1000])], store=store,
              private=True)
    assert r.link.startswith("file://")
    path = Path(r.link[len("file://"):])
    assert verify_archive(path, r.password)[0].name == "x.txt"
    clock.advance(days=7, seconds=1)
    with pytest.raises(ObjectExpiredError):
        relink(r.object_key, store=store)
    assert store.purge() == 1
    assert not path.exists()


def test_hostile_names_upload_nothing() -> None:
    store = MemoryStore("share-c")
    with pytest.raises(UnsafeEntryNameError):
        share([("ok", [b"1"]), ("../../etc/cron.d/x", [b"2"])], store=store)
    assert store._objects == {}


def test_failed_link_deletes_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore("share-d")

    def no_link(*a: Any, **k: Any) -> Any:
        raise StorageError("signing failed")

    monkeypatch.setattr(store, "link", no_link)
    with pytest.raises(StorageError):
        share([("a", [b"1"])], store=store)
    assert store._objects == {}


def test_revoke_and_relink() -> None:
    store = MemoryStore("share-e")
    r = share([("a", [b"1"])], store=store, retention="30d")
    short = relink(r.object_key, store=store, link_lifetime=timedelta(minutes=15))
    assert short.expires_at - store.clock() <= timedelta(minutes=15)
    assert revoke(r.object_key, store=store) is True
    with pytest.raises(NotFoundError):
        fetch(store, r.object_key)
    assert revoke(r.object_key, store=store) is False


def test_share_by_uri(tmp_path: Path) -> None:
    r = share([("a", [b"1"])], store=f"file://{tmp_path}", retention=7)
    assert r.store == f"file://{tmp_path}"
    assert (tmp_path / f"{r.object_key}.zip").exists()


def test_chat_log_export_and_bot_messages(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    msgs = [{"author": "ana", "text": "hi 👋"}, "plain string", {"author": "bo", "n": 2}]
    r = export_chat_log(iter(msgs), store=store)
    assert r.private and r.retention == "7d" and r.filename == "chat-export.zip"
    link_msg, pw_msg = bot_messages(r)
    assert r.link in link_msg and r.password.reveal() not in link_msg
    assert r.password.reveal() in pw_msg and r.link not in pw_msg
    (d,) = verify_archive(Path(r.link[len("file://"):]), r.password)
    assert d.name == "messages.jsonl"
    import hashlib

    expected = "".join(json.dumps(m if isinstance(m, dict) else {"text": m}, ensure_ascii=False,
                                  sort_keys=True) + "\n" for m in msgs).encode()
    assert d.sha256 == hashlib.sha256(expected).hexdigest()


def test_audit_records_share_without_the_password(tmp_path: Path, leak_canary: Any) -> None:
    log = tmp_path / "audit.jsonl"
    audit.configure(log)
    try:
        pw = leak_canary.new()
        r = share([("a", [b"1"])], store=LocalStore(tmp_path / "s"), password=pw)
        revoke(r.object_key, store=LocalStore(tmp_path / "s"))
    finally:
        audit.configure(None)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["action"] for e in events] == ["archive.share", "archive.revoke"]
    assert events[0]["target"].endswith(r.object_key) and events[0]["size"] == r.size
    leak_canary.watch_path(log)


def test_password_never_leaks(tmp_path: Path, leak_canary: Any) -> None:
    """The caller-supplied password path: logs, errors, reprs, store files, sidecars."""
    audit.configure(tmp_path / "audit.jsonl")
    try:
        pw = leak_canary.new()
        store = LocalStore(tmp_path / "store")
        r = share([("a.txt", [b"data" * 1000])], store=store, password=pw, private=True)
        assert r.password.reveal() == pw
        leak_canary.watch(r, r.to_dict(), store.head(r.object_key), relink(r.object_key,
                                                                             store=store))

        def dying() -> Iterator[bytes]:
            yield b"x" * 100
            raise OSError(5, "Input/output error")

        with pytest.raises(ArchiveError) as err:
            share([("b.txt", dying())], store=store, password=pw)
        leak_canary.watch_exception(err.value)
        with pytest.raises(ArchiveError) as err2:
            share([("c.txt", [b"1"])], store=store, password=pw[:5] + "é" * 10)
        leak_canary.watch_exception(err2.value)
        leak_canary.add(pw[:5] + "é" * 10)
    finally:
        audit.configure(None)
    leak_canary.watch_path(tmp_path)


def test_chatlog_example_prints_link_then_password(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "chatlog_export.py"
    r = subprocess.run([sys.executable, str(example), "--store", f"file://{tmp_path}"],
                       capture_output=True, text=True, timeout=60, check=True)
    link_msg, pw_msg = r.stdout.split("\n\n")
    assert link_msg.startswith("Your export is ready: file://")
    pw = re.search(r"Password for chat-export.zip: (\S+)", pw_msg)
    assert pw is not None and pw.group(1) not in link_msg
    path = Path(link_msg.split()[4][len("file://"):])
    assert verify_archive(path, pw.group(1))[0].name == "messages.jsonl"
