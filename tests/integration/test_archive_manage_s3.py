"""A share's life on S3 (moto over HTTP): share, list, relink, download through the
relinked URL and open it with 7-Zip, revoke by the link; list shows each state.

moto does not enforce URL expiry, so the states are driven by a fake clock: the store's
clock decides what is expired, exactly as it does against real S3.
"""

from __future__ import annotations

import hashlib
import subprocess
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from contracts.object_store import FakeClock
from harness.servers import find_binary
from vaultkit.archive import list_shares, relink, revoke, share
from vaultkit.backends import aws
from vaultkit.errors import InvalidReferenceError
from vaultkit.storage.s3 import MIN_PART_SIZE, S3Store

pytestmark = pytest.mark.integration


def states(store: S3Store) -> dict[str, str]:
    return {s.id: s.state for s in list_shares(store=store)}


def test_share_life_on_s3(moto_server: Any, tmp_path: Path) -> None:
    sevenzip = find_binary("7zz")
    if sevenzip is None:
        pytest.skip("7zz not installed: apt-get install 7zip")
    clock = FakeClock()
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", "bot", config=moto_server.config(),
                    part_size=MIN_PART_SIZE, require_tls=False, clock=clock)
    store.ensure_bucket()
    payload = b"line of chat\n" * 50_000
    first = share([("messages.jsonl", [payload])], store=store, retention="30d",
                  link_lifetime=timedelta(minutes=10), filename="chat.zip")
    other = share([("b.txt", [b"b"])], store=store, retention="7d")
    assert states(store) == {first.object_key: "active", other.object_key: "active"}
    (row,) = [s for s in list_shares(store=store) if s.id == first.object_key]
    assert row.retention == "30d" and row.size == first.size
    assert row.link_expires_at == first.link_expires_at
    assert row.expires_at == first.expires_at

    clock.advance(minutes=11)
    assert states(store)[first.object_key] == "link-expired"

    # relink by the 32 hex digits: capped at 7 days (30-day retention), recorded.
    fresh = relink(first.object_key.split("/")[1], store=store, filename="chat.zip")
    assert fresh.expires_at - clock() <= timedelta(days=7)
    assert fresh.expires_at > clock() + timedelta(days=7) - timedelta(minutes=1)
    assert int(parse_qs(urlsplit(fresh.url).query)["X-Amz-Expires"][0]) <= 7 * 24 * 3600
    assert states(store)[first.object_key] == "active"
    late = relink(other.object_key, store=store, filename="b.zip")  # 7d: capped by retention
    assert late.expires_at <= other.expires_at

    with urllib.request.urlopen(fresh.url, timeout=30) as resp:  # noqa: S310 - moto http
        body = resp.read()
    assert hashlib.sha256(body).hexdigest() == first.sha256
    (tmp_path / "chat.zip").write_bytes(body)
    r = subprocess.run([sevenzip, "x", "-y", f"-p{first.password.reveal()}",
                        f"-o{tmp_path / 'out'}", str(tmp_path / "chat.zip")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout
    assert (tmp_path / "out" / "messages.jsonl").read_bytes() == payload

    # Revoke by the link the user was first given (already lapsed: still names the share).
    with pytest.raises(InvalidReferenceError):
        revoke(first.link.replace(store.bucket, "someone-elses-bucket"), store=store)
    assert revoke(first.link, store=store) is True
    assert revoke(first.link, store=store) is False
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(fresh.url, timeout=10)  # noqa: S310
    assert states(store) == {other.object_key: "active"}

    clock.advance(days=8)
    assert states(store) == {other.object_key: "expired"}
    # purge deletes exact vaultkit names only: a team file under the prefix stays.
    c = aws.client("s3", store.config)
    c.put_object(Bucket=store.bucket, Key="bot/ttl-7d/NOTES.txt", Body=b"team notes")
    assert store.purge() == 1
    assert [o["Key"] for o in c.list_objects_v2(Bucket=store.bucket)["Contents"]] == [
        "bot/ttl-7d/NOTES.txt"]
    assert list_shares(store=store) == []
