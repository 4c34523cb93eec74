"""Object stores for expiring exports: S3, a local folder, and memory.

Pick one by URI, never by guessing:

==========================  ======================================================
``s3://bucket[/prefix]``    :class:`S3Store` (lifecycle expiry, SSE, pre-signed links)
``file://DIR``              :class:`LocalStore` (the embedded default)
``memory://name``           :class:`MemoryStore` (tests and demos)
==========================  ======================================================

boto3 is imported only when an S3 store makes its first call.

>>> store = get_store("memory://docs")
>>> store.uri
'memory://docs'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import InvalidReferenceError
from .base import (
    MAX_LINK_LIFETIME,
    RETENTION_DAYS,
    Link,
    ObjectInfo,
    ObjectStore,
    Retention,
    Upload,
    check_object_key,
    link_expiry,
    new_object_key,
    parse_retention,
    redact_url,
)
from .local import LocalStore
from .memory import MemoryStore

if TYPE_CHECKING:
    from .s3 import S3Store

SCHEMES = ("s3", "file", "memory")


def get_store(uri: str, *, config: Config | None = None, kms_key_id: str | None = None,
              **options: Any) -> ObjectStore:
    """The store for ``uri`` (``s3://bucket/prefix``, ``file://DIR``, ``memory://name``).

    ``kms_key_id`` selects SSE-KMS for S3; otherwise ``[archive] kms_key_id`` from the
    config is used, and SSE-S3 when neither is set.
    """
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidReferenceError(
            f"store URI must look like scheme://...; schemes: {', '.join(SCHEMES)}",
            reference=str(uri)[:200])
    scheme, rest = uri.split("://", 1)
    if scheme == "memory":
        if not rest or "/" in rest:
            raise InvalidReferenceError("memory:// needs a name", reference=uri)
        return MemoryStore.named(rest)
    if scheme == "file":
        if not rest:
            raise InvalidReferenceError("file:// needs a folder", reference=uri)
        return LocalStore(rest, **options)
    if scheme == "s3":
        from .s3 import S3Store

        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise InvalidReferenceError("s3:// needs a bucket name", reference=uri)
        cfg = config or Config.load()
        section = cfg.section("archive")
        kms = kms_key_id or section.get("kms_key_id")
        options.setdefault("require_tls", str(section.get("s3_require_tls", "true")).lower()
                           not in ("false", "0", "no", "off"))
        return S3Store(bucket, prefix, config=cfg, kms_key_id=kms, **options)
    raise InvalidReferenceError(
        f"unknown store scheme {scheme!r}; expected one of {', '.join(SCHEMES)}", reference=uri)


__all__ = [
    "MAX_LINK_LIFETIME",
    "RETENTION_DAYS",
    "LocalStore",
    "Link",
    "MemoryStore",
    "ObjectInfo",
    "ObjectStore",
    "Retention",
    "S3Store",
    "Upload",
    "check_object_key",
    "get_store",
    "link_expiry",
    "new_object_key",
    "parse_retention",
    "redact_url",
]


def __getattr__(name: str) -> Any:
    if name == "S3Store":
        from .s3 import S3Store

        return S3Store
    raise AttributeError(name)
