"""``s3://bucket[/prefix]``: exports in S3 (or MinIO, LocalStack, moto) with lifecycle expiry.

:meth:`S3Store.ensure_bucket` (``vaultkit archive setup``) writes only what vaultkit owns
on a bucket others may share (the rule is in :mod:`.s3_setup`): the ``vaultkit-``
lifecycle rules (one per retention class, on the immutable key prefix
``<prefix>ttl-<N>d/``, each also aborting incomplete multipart uploads after 1 day) and the
``vaultkit-`` TLS-only policy statement (https endpoints only). Default encryption and
Block Public Access are set on a bucket it creates; on an existing bucket they are
reported and changed only with ``force``.

Lifecycle deletion is day-granular and asynchronous (it may run a day or more after the
object became eligible), so it is garbage collection, not the access cut-off. The
cut-off is the pre-signed link's expiry, which vaultkit never sets past the object's
expiry, 7 days (SigV4's maximum) or the signing credentials' expiry. :meth:`purge`
deletes expired objects immediately for those who want a hard deadline.

Uploads are multipart and streaming: at most one part (8 MiB by default) is buffered.
Any error aborts the multipart upload. Objects carry no metadata and no tags. Beside each
object, ``<key>.json`` records its times, size and SHA-256 and the expiry of its latest
link (what ``archive list`` shows); it is under the same prefix, so the same lifecycle
rule deletes it, and ``delete``/``purge`` remove it with the object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ..config import Config
from ..errors import (
    AccessDeniedError,
    ConfigError,
    InvalidReferenceError,
    NotFoundError,
    ObjectExpiredError,
)
from .base import (
    RETENTION_DAYS,
    Clock,
    Link,
    ObjectInfo,
    Retention,
    Upload,
    check_object_key,
    key_in_link_path,
    link_expiry,
    new_object_key,
    utcnow,
)

if TYPE_CHECKING:
    from .s3_setup import SetupPlan

DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: S3 refuses parts smaller than 5 MiB, except the last.
MIN_PART_SIZE = 5 * 1024 * 1024
RULE_PREFIX = "vaultkit-"
#: A share's record (timestamps and size, never a name or password) next to its object.
RECORD_SUFFIX = ".json"
_DATA = re.compile(r"^ttl-(7|14|30)d/[0-9a-f]{32}$")
_RECORD = re.compile(r"^ttl-(7|14|30)d/[0-9a-f]{32}\.json$")

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
        with store._denied(key, "PutObject"):
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
        with self._store._denied(self.key, "PutObject"):
            resp = self._s3.upload_part(Bucket=self._store.bucket, Key=self._full,
                                        UploadId=self._upload_id, PartNumber=number, Body=part)
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def _commit(self) -> ObjectInfo:
        if self._buf or not self._parts:
            self._send(bytes(self._buf))
            self._buf = bytearray()
        with self._store._denied(self.key, "PutObject"):
            self._s3.complete_multipart_upload(
                Bucket=self._store.bucket, Key=self._full, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
        info = ObjectInfo(self.key, self.size, self._store.clock(), self.expires_at, self.sha256)
        try:
            self._store._put_record(info)
        except BaseException:
            with contextlib.suppress(Exception):
                self._s3.delete_object(Bucket=self._store.bucket, Key=self._full)
            raise
        return info

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

    @contextlib.contextmanager
    def _denied(self, key: str, action: str) -> Iterator[None]:
        try:
            with self._errors(key):
                yield
        except AccessDeniedError as exc:
            raise self.access_denied(exc, key, action) from exc

    def _full_key(self, key: str) -> str:
        check_object_key(key)
        return self.prefix + key

    # --- share records: <key>.json beside the object, same prefix, same lifecycle rule ---

    def _put_record(self, info: ObjectInfo) -> None:
        body = json.dumps({
            "version": 1, "key": info.key, "size": info.size, "sha256": info.sha256,
            "created_at": info.created_at.isoformat(), "expires_at": info.expires_at.isoformat(),
            "link_expires_at": info.link_expires_at.isoformat() if info.link_expires_at
            else None}, sort_keys=True).encode()
        extra: dict[str, Any] = {"ServerSideEncryption": "AES256"}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        with self._denied(info.key, "PutObject"):
            self._client().put_object(Bucket=self.bucket,
                                      Key=self._full_key(info.key) + RECORD_SUFFIX,
                                      Body=body, ContentType="application/json", **extra)

    def _get_record(self, key: str) -> dict[str, Any] | None:
        try:
            with self._errors(key):
                body = self._client().get_object(
                    Bucket=self.bucket, Key=self._full_key(key) + RECORD_SUFFIX)["Body"].read()
        except NotFoundError:
            return None
        try:
            record: dict[str, Any] = json.loads(body)
        except ValueError:
            return None
        return record

    # --- bucket setup (the ownership rule lives in s3_setup) ---------------------------

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        from .s3_setup import lifecycle_rules

        return lifecycle_rules(self.prefix, RETENTION_DAYS)

    def endpoint_is_https(self) -> bool:
        url = str(getattr(self._client().meta, "endpoint_url", "") or "")
        return url.lower().startswith("https://")

    def plan_bucket(self, *, force: Iterable[str] = ()) -> SetupPlan:
        """What :meth:`ensure_bucket` would change, without changing anything."""
        from .s3_setup import plan_setup, read_state

        with self._errors():
            state = read_state(self._client(), self.bucket)
        return plan_setup(state, bucket=self.bucket, prefix=self.prefix,
                          retention_days=RETENTION_DAYS, kms_key_id=self.kms_key_id,
                          require_tls=self.require_tls, https=self.endpoint_is_https(),
                          force=force)

    def ensure_bucket(self, *, dry_run: bool = False, force: Iterable[str] = ()) -> SetupPlan:
        """Create the bucket if needed and bring vaultkit's own settings up to date.

        Only ``vaultkit-`` policy statements and lifecycle rules are written; everything
        else is kept, and bucket-wide settings of an existing bucket are reported in
        :attr:`SetupPlan.findings` unless ``force`` names them (see :mod:`.s3_setup`).
        A second run is a no-op (``plan.changes == []``).
        """
        from .s3_setup import apply_plan

        plan = self.plan_bucket(force=force)
        if dry_run or not plan.changes:
            return plan
        s3 = self._client()
        with self._errors():
            applied = apply_plan(s3, plan, region=s3.meta.region_name)
        for finding in plan.findings:
            logger.warning("setup %s: %s: %s", self.uri, finding.setting, finding.message)
        return applied

    def ensure(self) -> None:
        self.ensure_bucket()

    def bucket_policy(self) -> dict[str, Any]:
        """vaultkit's own statement: refuse any request not made over TLS."""
        from .s3_setup import tls_statement

        return {"Version": "2012-10-17", "Statement": [tls_statement(self.bucket)]}

    def access_denied(self, exc: AccessDeniedError, key: str, action: str) -> AccessDeniedError:
        """A 403 on upload with its likely causes named (S3 itself says only "Forbidden")."""
        causes = [f"the bucket policy denies {action} (see `vaultkit archive setup --dry-run "
                  f"--store {self.uri}`)"]
        if not self.endpoint_is_https():
            causes.insert(0, "a TLS-only (aws:SecureTransport) deny statement, and this "
                          "endpoint is http://: set [archive] s3_require_tls = false and run "
                          "`vaultkit archive setup` to remove vaultkit's")
        causes.append(f"the credentials lack s3:{action} on arn:aws:s3:::{self.bucket}/"
                      f"{self.prefix}*")
        if self.kms_key_id:
            causes.append(f"the credentials lack kms:GenerateDataKey/kms:Decrypt on KMS key "
                          f"{self.kms_key_id}")
        return AccessDeniedError(
            f"S3 refused the upload ({exc.status or 403}); likely causes: " + "; ".join(causes),
            source="s3", reference=f"{self.uri}/{key}", status=exc.status)

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
        return self._info(key, retention, int(resp["ContentLength"]), created)

    def _info(self, key: str, retention: Retention, size: int, modified: datetime,
              record: dict[str, Any] | None = None) -> ObjectInfo:
        """The object's times: from its record when there is one (written at commit), else
        from LastModified, which is when the multipart upload completed."""
        record = self._get_record(key) if record is None else record
        created, expires, sha, link = modified, modified + retention.period, None, None
        if record:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                created = datetime.fromisoformat(record["created_at"])
                expires = datetime.fromisoformat(record["expires_at"])
                sha = record.get("sha256")
                if record.get("link_expires_at"):
                    link = datetime.fromisoformat(record["link_expires_at"])
        return ObjectInfo(key, size, created, expires, sha, link)

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
        link = Link(url, now.replace(microsecond=0) + timedelta(seconds=seconds))
        self._put_record(ObjectInfo(key, info.size, info.created_at, info.expires_at,
                                    info.sha256, link.expires_at))
        return link

    def key_for_link(self, link: str) -> str:
        """The key of a pre-signed link to this bucket and prefix (path or virtual-host style)."""
        parts = urlsplit(link.strip())
        path = unquote(parts.path)
        key = key_in_link_path(path)
        host = (parts.hostname or "").lower()
        if key is not None and parts.scheme in ("http", "https") and (
                path == f"/{self.bucket}/{self.prefix}{key}"
                or (host.startswith(f"{self.bucket.lower()}.")
                    and path == f"/{self.prefix}{key}")):
            return key
        raise InvalidReferenceError("not a link to this store's objects",
                                    reference=f"{parts.scheme}://{parts.netloc}{parts.path}"[:200])

    def _listing(self) -> Iterator[tuple[str, Retention, dict[str, Any]]]:
        """(key relative to the prefix, retention, listed object) for exact vaultkit names."""
        s3 = self._client()
        for days in RETENTION_DAYS:
            with self._errors():
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=f"{self.prefix}ttl-{days}d/")
                for page in pages:
                    for obj in page.get("Contents", []):
                        rel = str(obj["Key"])[len(self.prefix):]
                        if _DATA.match(rel) or _RECORD.match(rel):
                            yield rel, Retention(days), obj

    def objects(self) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        for rel, retention, obj in self._listing():
            if not _DATA.match(rel):
                continue
            modified: datetime = obj["LastModified"]
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=timezone.utc)
            found.append(self._info(rel, retention, int(obj["Size"]), modified))
        return sorted(found, key=lambda i: (i.created_at, i.key))

    def delete(self, key: str) -> bool:
        try:
            self.head(key)
        except NotFoundError:
            existed = False
        else:
            existed = True
            with self._errors(key):
                self._client().delete_object(Bucket=self.bucket, Key=self._full_key(key))
        with self._errors(key):  # the record goes too (deleting a missing key is not an error)
            self._client().delete_object(Bucket=self.bucket,
                                         Key=self._full_key(key) + RECORD_SUFFIX)
        return existed

    def purge(self) -> int:
        """Delete objects past their retention now, instead of waiting for lifecycle.

        Only exact vaultkit names (``ttl-<N>d/<32 hex>`` and its ``.json`` record) are
        considered; anything else under the prefix belongs to someone else.
        """
        s3 = self._client()
        now = self.clock()
        removed = 0
        for rel, retention, obj in list(self._listing()):
            modified: datetime = obj["LastModified"]
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=timezone.utc)
            if now >= modified + retention.period:
                with self._errors(rel):
                    s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                    if _DATA.match(rel):
                        s3.delete_object(Bucket=self.bucket, Key=obj["Key"] + RECORD_SUFFIX)
                        removed += 1
        return removed


__all__ = ["S3Store", "content_disposition"]
