"""``s3://bucket[/prefix]``: exports in S3 (or MinIO, LocalStack, moto) with lifecycle expiry.

:meth:`S3Store.ensure_bucket` configures, idempotently:

* one lifecycle rule per retention class, matching the immutable key prefix
  ``<prefix>ttl-<N>d/`` (tags are mutable, prefixes are not), expiring current objects
  after N days and non-current versions after 1 day (in case versioning gets enabled);
* a rule aborting incomplete multipart uploads after 1 day (a backstop: vaultkit itself
  aborts on every error);
* default encryption: SSE-S3 (``AES256``), or SSE-KMS with ``kms_key_id`` and S3 Bucket
  Keys (fewer KMS calls);
* Block Public Access (all four settings), and a bucket policy refusing plain HTTP
  (``require_tls``; ``[archive] s3_require_tls = false`` turns it off for a local
  http:// endpoint such as moto or MinIO).

Lifecycle deletion is day-granular and asynchronous (it may run a day or more after the
object became eligible), so it is garbage collection, not the access cut-off. The
cut-off is the pre-signed link's expiry, which vaultkit never sets past the object's
expiry, 7 days (SigV4's maximum) or the signing credentials' expiry. :meth:`purge`
deletes expired objects immediately for those who want a hard deadline.

Uploads are multipart and streaming: at most one part (8 MiB by default) is buffered.
Any error aborts the multipart upload. Objects carry no metadata and no tags: nothing
but the random key and the ciphertext.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from ..config import Config
from ..errors import ConfigError, NotFoundError, ObjectExpiredError
from .base import (
    RETENTION_DAYS,
    Clock,
    Link,
    ObjectInfo,
    Retention,
    Upload,
    check_object_key,
    link_expiry,
    new_object_key,
    utcnow,
)

DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: S3 refuses parts smaller than 5 MiB, except the last.
MIN_PART_SIZE = 5 * 1024 * 1024
RULE_PREFIX = "vaultkit-"

logger = logging.getLogger("vaultkit.storage.s3")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 6266 / RFC 5987 UTF-8 form."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class _S3Upload(Upload):
    def __init__(self, store: S3Store, key: str, expires_at: datetime) -> None:
        super().__init__(key, expires_at)
        self._store = store
        self._s3 = store._client()
        self._full = store._full_key(key)
        self._buf = bytearray()
        self._parts: list[dict[str, Any]] = []
        extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
        if store.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": store.kms_key_id,
                     "BucketKeyEnabled": True}
        with store._errors(key):
            resp = self._s3.create_multipart_upload(
                Bucket=store.bucket, Key=self._full, ContentType="application/zip", **extra)
        self._upload_id: str = resp["UploadId"]

    def _write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= self._store.part_size:
            part = bytes(self._buf[: self._store.part_size])
            del self._buf[: self._store.part_size]
            self._send(part)

    def _send(self, part: bytes) -> None:
        number = len(self._parts) + 1
        with self._store._errors(self.key):
            resp = self._s3.upload_part(Bucket=self._store.bucket, Key=self._full,
                                        UploadId=self._upload_id, PartNumber=number, Body=part)
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def _commit(self) -> ObjectInfo:
        if self._buf or not self._parts:
            self._send(bytes(self._buf))
            self._buf = bytearray()
        with self._store._errors(self.key):
            self._s3.complete_multipart_upload(
                Bucket=self._store.bucket, Key=self._full, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
        return ObjectInfo(self.key, self.size, self._store.clock(), self.expires_at, self.sha256)

    def _abort(self) -> None:
        self._buf = bytearray()
        try:
            with self._store._errors(self.key):
                self._s3.abort_multipart_upload(Bucket=self._store.bucket, Key=self._full,
                                                UploadId=self._upload_id)
        except Exception as exc:  # noqa: BLE001 - never mask the error that caused the abort
            # The lifecycle rule aborts it within a day; the original error matters more.
            logger.warning("could not abort multipart upload of %s: %s", self.key,
                           type(exc).__name__)


class S3Store:
    """An :class:`ObjectStore` in an S3 bucket.

    >>> store = S3Store("exports", prefix="bot/", kms_key_id="alias/exports")  # doctest: +SKIP
    >>> store.ensure_bucket()  # doctest: +SKIP
    """

    def __init__(self, bucket: str, prefix: str = "", *, config: Config | None = None,
                 kms_key_id: str | None = None, part_size: int = DEFAULT_PART_SIZE,
                 require_tls: bool = True, clock: Clock = utcnow) -> None:
        if not bucket or "/" in bucket:
            raise ConfigError("S3 bucket name is empty or has '/'", reference=bucket)
        prefix = prefix.strip("/")
        if prefix and ".." in prefix.split("/"):
            raise ConfigError("S3 prefix must not contain '..'", reference=prefix)
        if part_size < MIN_PART_SIZE:
            raise ConfigError("part_size must be at least 5 MiB (an S3 limit)")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.config = config or Config.load()
        self.kms_key_id = kms_key_id
        self.part_size = part_size
        #: Add the bucket policy refusing plain HTTP. Only a local test endpoint over
        #: http:// (moto, MinIO without TLS) needs this off.
        self.require_tls = require_tls
        self.clock = clock

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r})"

    def _client(self) -> Any:
        from ..backends import aws

        return aws.client("s3", self.config)

    def _errors(self, key: str | None = None) -> Any:
        from ..backends import aws

        return aws.aws_errors("s3", reference=f"{self.uri}/{key}" if key else self.uri)

    def _full_key(self, key: str) -> str:
        check_object_key(key)
        return self.prefix + key

    # --- bucket setup -------------------------------------------------------------------

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = [{
            "ID": f"{RULE_PREFIX}ttl-{days}d",
            "Filter": {"Prefix": f"{self.prefix}ttl-{days}d/"},
            "Status": "Enabled",
            "Expiration": {"Days": days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        } for days in RETENTION_DAYS]
        rules.append({
            "ID": f"{RULE_PREFIX}abort-incomplete-uploads",
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        })
        return rules

    def ensure_bucket(self) -> None:
        """Create the bucket if needed and (re)apply lifecycle, encryption and access rules.

        Lifecycle rules not named ``vaultkit-*`` are kept as they are.
        """
        s3 = self._client()
        with self._errors():
            try:
                s3.head_bucket(Bucket=self.bucket)
            except Exception as exc:
                from ..backends.aws import map_exception

                if not isinstance(map_exception(exc, source="s3"), NotFoundError):
                    raise
                region = s3.meta.region_name
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if region and region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
                s3.create_bucket(**kwargs)
            s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
            sse: dict[str, Any] = {"SSEAlgorithm": "AES256"}
            if self.kms_key_id:
                sse = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.kms_key_id}
            s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": sse,
                           "BucketKeyEnabled": bool(self.kms_key_id)}]})
            existing: list[dict[str, Any]] = []
            try:
                existing = s3.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
            except Exception as exc:
                if "NoSuchLifecycleConfiguration" not in str(exc):
                    raise
            keep = [r for r in existing if not str(r.get("ID", "")).startswith(RULE_PREFIX)]
            s3.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": keep + self.lifecycle_rules()})
            if self.require_tls:
                s3.put_bucket_policy(Bucket=self.bucket,
                                     Policy=json.dumps(self.bucket_policy()))

    def bucket_policy(self) -> dict[str, Any]:
        """Refuse any request not made over TLS (``aws:SecureTransport``)."""
        arn = f"arn:aws:s3:::{self.bucket}"
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": "VaultkitDenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}

    ensure = ensure_bucket

    # --- objects --------------------------------------------------------------------------

    def new_key(self, retention: Retention) -> str:
        return new_object_key(retention)

    def open_upload(self, key: str, *, expires_at: datetime) -> Upload:
        check_object_key(key)
        return _S3Upload(self, key, expires_at)

    def head(self, key: str) -> ObjectInfo:
        retention = check_object_key(key)
        with self._errors(key):
            resp = self._client().head_object(Bucket=self.bucket, Key=self._full_key(key))
        created: datetime = resp["LastModified"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return ObjectInfo(key, int(resp["ContentLength"]), created, created + retention.period)

    def _live(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info.expired(self.clock()):
            raise ObjectExpiredError("the object has expired", source="s3",
                                     reference=f"{self.uri}/{key}")
        return info

    def read(self, key: str) -> Iterator[bytes]:
        self._live(key)
        with self._errors(key):
            body = self._client().get_object(Bucket=self.bucket, Key=self._full_key(key))["Body"]
            try:
                while chunk := body.read(1024 * 1024):
                    yield chunk
            finally:
                body.close()

    def credentials_expire_at(self) -> datetime | None:
        """When the signing credentials expire (STS, SSO, instance roles), if they do."""
        from ..backends import aws

        creds = aws.session(self.config).get_credentials()
        # botocore keeps the expiry of refreshable credentials privately; no public API.
        expiry = getattr(creds, "_expiry_time", None)
        if isinstance(expiry, datetime):
            return expiry if expiry.tzinfo else expiry.replace(tzinfo=timezone.utc)
        return None

    def link(self, key: str, *, filename: str, max_lifetime: timedelta | None = None) -> Link:
        info = self._live(key)
        now = self.clock()
        expires = link_expiry(now, info.expires_at,
                              credentials_expire_at=self.credentials_expire_at(),
                              max_lifetime=max_lifetime)
        seconds = int((expires - now).total_seconds())
        with self._errors(key):
            url = self._client().generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._full_key(key),
                        "ResponseContentDisposition": content_disposition(filename),
                        "ResponseContentType": "application/zip"},
                ExpiresIn=seconds)
        return Link(url, now.replace(microsecond=0) + timedelta(seconds=seconds))

    def delete(self, key: str) -> bool:
        try:
            self.head(key)
        except NotFoundError:
            return False
        with self._errors(key):
            self._client().delete_object(Bucket=self.bucket, Key=self._full_key(key))
        return True

    def purge(self) -> int:
        """Delete objects past their retention now, instead of waiting for lifecycle."""
        s3 = self._client()
        now = self.clock()
        removed = 0
        for days in RETENTION_DAYS:
            prefix = f"{self.prefix}ttl-{days}d/"
            with self._errors():
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                     Prefix=prefix)
                for page in pages:
                    for obj in page.get("Contents", []):
                        created = obj["LastModified"]
                        if now >= created + timedelta(days=days):
                            s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                            removed += 1
        return removed


__all__ = ["S3Store", "content_disposition"]
