"""The password never reaches S3: not in metadata, tags, logs (incl. botocore DEBUG) or errors."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from vaultkit.archive import export_chat_log, share
from vaultkit.backends import aws
from vaultkit.errors import ArchiveError
from vaultkit.storage.s3 import MIN_PART_SIZE, S3Store

pytestmark = pytest.mark.integration


def test_password_not_in_metadata_tags_logs_or_errors(moto_server: Any, leak_canary: Any) -> None:
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", config=moto_server.config(),
                    part_size=MIN_PART_SIZE, require_tls=False)
    store.ensure_bucket()
    pw = leak_canary.new()
    r = share([("a.bin", [os.urandom(6 << 20)])], store=store, password=pw, private=True)
    s3 = aws.client("s3", moto_server.config())
    head = s3.head_object(Bucket=store.bucket, Key=r.object_key)
    tags = s3.get_object_tagging(Bucket=store.bucket, Key=r.object_key)["TagSet"]
    assert head.get("Metadata", {}) == {} and tags == []
    leak_canary.watch(head, tags, r, r.to_dict())

    def dying() -> Iterator[bytes]:
        yield os.urandom(6 << 20)
        raise OSError(5, "Input/output error")

    with pytest.raises(ArchiveError) as err:
        share([("b.bin", dying())], store=store, password=pw)
    leak_canary.watch_exception(err.value)
    # What is in the bucket is the random key and ciphertext only.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert keys == [r.object_key, r.object_key + ".json"]  # the object and its share record
    record = json.loads(s3.get_object(Bucket=store.bucket, Key=r.object_key + ".json")[
        "Body"].read())
    assert set(record) == {"version", "key", "size", "sha256", "created_at", "expires_at",
                           "link_expires_at"}
    leak_canary.watch(record)


def test_chat_log_export_object_carries_no_identifiers(moto_server: Any) -> None:
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", "bot", config=moto_server.config(),
                    require_tls=False)
    store.ensure_bucket()
    r = export_chat_log(({"guild": "guild-1234", "user": "user-5678", "text": f"m{i}"}
                         for i in range(1000)), store=store, retention="30d")
    s3 = aws.client("s3", moto_server.config())
    objs = s3.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [o["Key"] for o in objs] == ["bot/" + r.object_key, "bot/" + r.object_key + ".json"]
    for obj in objs:
        body = s3.get_object(Bucket=store.bucket, Key=obj["Key"])["Body"].read()
        for ident in (b"guild-1234", b"user-5678", b"messages.jsonl", b"chat-export"):
            assert ident not in body and ident.decode() not in obj["Key"]
