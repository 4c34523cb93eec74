"""S3Store against moto over HTTP: the contract, bucket settings, streaming share through a
pre-signed link extracted by 7-Zip, and failures that leave nothing behind.

moto enforces neither link expiry nor lifecycle rules (research/archives.md B6): the
expiry arithmetic is pinned by unit tests, and here we assert the *configuration*.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from contracts.object_store import FakeClock, ObjectStoreContract
from harness.servers import find_binary
from vaultkit.archive import share
from vaultkit.backends import aws
from vaultkit.errors import AccessDeniedError, ArchiveError, UnavailableError, VaultkitError
from vaultkit.storage import ObjectStore
from vaultkit.storage.s3 import MIN_PART_SIZE, S3Store

pytestmark = pytest.mark.integration


def new_store(moto_server: Any, clock: Any = None, **kw: Any) -> S3Store:
    # moto speaks plain HTTP and enforces bucket policies, so the TLS-only policy is off
    # here; test_tls_only_policy_refuses_plain_http checks it on its own bucket.
    kwargs: dict[str, Any] = {"config": moto_server.config(), "part_size": MIN_PART_SIZE,
                              "require_tls": False}
    if clock is not None:
        kwargs["clock"] = clock
    kwargs.update(kw)
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", "exports", **kwargs)
    store.ensure_bucket()
    return store


def s3(moto_server: Any) -> Any:
    return aws.client("s3", moto_server.config())


def leftovers(store: S3Store) -> tuple[list[str], list[str]]:
    c = aws.client("s3", store.config)
    objs = [o["Key"] for o in c.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    ups = [u["Key"] for u in c.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
    return objs, ups


class TestS3StoreContract(ObjectStoreContract):
    multipart_size = 11 * 1024 * 1024  # three 5 MiB parts

    @pytest.fixture
    def store(self, clock: FakeClock, moto_server: Any) -> ObjectStore:
        return new_store(moto_server, clock)


def test_bucket_lifecycle_encryption_and_public_access(moto_server: Any) -> None:
    store = new_store(moto_server)
    c = s3(moto_server)
    c.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={"Rules": [
        {"ID": "someone-elses", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
         "Expiration": {"Days": 90}}]})
    store.ensure_bucket()  # idempotent, keeps foreign rules
    rules = {r["ID"]: r for r in c.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]}
    assert "someone-elses" in rules
    for days in (7, 14, 30):
        rule = rules[f"vaultkit-ttl-{days}d"]
        assert rule["Status"] == "Enabled"
        assert rule["Filter"]["Prefix"] == f"exports/ttl-{days}d/"
        assert rule["Expiration"]["Days"] == days
        assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert sorted(rules) == ["someone-elses", "vaultkit-ttl-14d", "vaultkit-ttl-30d",
                             "vaultkit-ttl-7d"]
    enc = c.get_bucket_encryption(Bucket=store.bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    pab = c.get_public_access_block(Bucket=store.bucket)["PublicAccessBlockConfiguration"]
    assert pab == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                   "RestrictPublicBuckets": True}


def test_tls_only_deny_is_never_added_on_http_and_a_403_names_its_causes(
        moto_server: Any) -> None:
    store = new_store(moto_server, require_tls=True)  # moto is http://
    c = s3(moto_server)
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        c.get_bucket_policy(Bucket=store.bucket)
    share([("a.txt", [b"x"])], store=store)  # works: no deny on an http endpoint
    # The deny an older vaultkit (or a human) put there refuses every plain-HTTP request;
    # moto enforces it, and the error says why instead of a bare "403: Forbidden".
    c.put_bucket_policy(Bucket=store.bucket, Policy=json.dumps(store.bucket_policy()))
    policy = json.loads(c.get_bucket_policy(Bucket=store.bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    with pytest.raises(AccessDeniedError) as err:
        share([("a.txt", [b"x"])], store=store)
    message = str(err.value)
    assert "TLS-only" in message and "s3_require_tls = false" in message
    assert "bucket policy" in message and "s3:PutObject" in message
    assert err.value.source == "s3"
    objs, ups = leftovers(store)
    assert ups == [] and all(k.endswith(".json") or "ttl-" in k for k in objs)
    assert len([k for k in objs if not k.endswith(".json")]) == 1  # only the first share


def test_sse_kms_bucket_and_objects(moto_server: Any) -> None:
    kms = aws.client("kms", moto_server.config())
    key_id = kms.create_key(Description="exports")["KeyMetadata"]["KeyId"]
    store = new_store(moto_server, kms_key_id=key_id)
    c = s3(moto_server)
    sse = c.get_bucket_encryption(Bucket=store.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}
    result = share([("a.txt", [b"hello"])], store=store, retention="14d")
    head = c.head_object(Bucket=store.bucket, Key=store.prefix + result.object_key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)


def chat_lines(n: int) -> Iterator[str]:
    for i in range(n):
        yield json.dumps({"id": i, "author": f"user{i % 7}", "text": os.urandom(40).hex()}) + "\n"


def test_streamed_share_download_via_presigned_link_and_7zz(moto_server: Any,
                                                            tmp_path: Path) -> None:
    sevenzip = find_binary("7zz")
    if sevenzip is None:
        pytest.skip("7zz not installed: apt-get install 7zip")
    store = new_store(moto_server)
    lines = list(chat_lines(120_000))  # ~14 MB of JSONL, incompressible-ish: 3 parts
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    result = share([("messages.jsonl", iter(lines))], store=store, retention="30d",
                   filename="chat-export.zip")
    head = s3(moto_server).head_object(Bucket=store.bucket, Key=store.prefix + result.object_key)
    assert "-" in head["ETag"]  # a multipart ETag: "<md5>-<parts>"
    assert int(head["ETag"].strip('"').split("-")[1]) >= 2
    assert head["ContentLength"] == result.size
    assert head.get("Metadata", {}) == {}
    q = parse_qs(urlsplit(result.link).query)
    assert int(q["X-Amz-Expires"][0]) <= 7 * 24 * 3600
    assert 'filename="chat-export.zip"' in q["response-content-disposition"][0]
    with urllib.request.urlopen(result.link, timeout=30) as resp:  # noqa: S310 - moto http
        body = resp.read()
        disposition = resp.headers["Content-Disposition"]
    assert 'filename="chat-export.zip"' in disposition
    assert hashlib.sha256(body).hexdigest() == result.sha256
    archive = tmp_path / "chat-export.zip"
    archive.write_bytes(body)
    out = tmp_path / "x"
    r = subprocess.run([sevenzip, "x", "-y", f"-p{result.password.reveal()}", f"-o{out}",
                        str(archive)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout
    assert hashlib.sha256((out / "messages.jsonl").read_bytes()).hexdigest() == expected


def test_input_failure_mid_upload_leaves_no_object_and_no_upload(moto_server: Any) -> None:
    store = new_store(moto_server)

    def dying() -> Iterator[bytes]:
        for _ in range(12):  # > 2 parts of random data get uploaded first
            yield os.urandom(1 << 20)
        raise OSError(5, "Input/output error")

    with pytest.raises(ArchiveError, match="Input/output error"):
        share([("big.bin", dying())], store=store, retention="7d")
    assert leftovers(store) == ([], [])


def test_s3_failure_mid_upload_aborts(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(moto_server)
    client = aws.client("s3", store.config)
    real = client.upload_part
    calls = {"n": 0}

    def flaky(**kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce rate"},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "UploadPart")
        return real(**kw)

    monkeypatch.setattr(client, "upload_part", flaky)
    with pytest.raises(UnavailableError) as err:
        share([("r.bin", (os.urandom(1 << 20) for _ in range(12)))], store=store)
    assert err.value.source == "s3"
    monkeypatch.undo()
    assert leftovers(store) == ([], [])


def test_revoke_deletes_and_link_stops_working(moto_server: Any) -> None:
    from vaultkit.archive import revoke

    store = new_store(moto_server)
    result = share([("a.txt", [b"x"])], store=store)
    assert revoke(result.object_key, store=store) is True
    assert leftovers(store) == ([], [])
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(result.link, timeout=10)  # noqa: S310
    assert err.value.code in (403, 404)  # S3 says 403 for a missing key without ListBucket
    assert revoke(result.object_key, store=store) is False


def test_bucket_errors_are_vaultkit_errors(moto_server: Any) -> None:
    store = S3Store("vk-missing-bucket", config=moto_server.config())
    with pytest.raises(VaultkitError) as err:
        share([("a", [b"1"])], store=store)
    assert err.value.source == "s3"
