"""The ``ObjectStore`` protocol, retention classes, object keys and link-expiry arithmetic.

Object keys are ``ttl-<N>d/<32 hex>``: the retention class is an immutable prefix (S3
lifecycle rules match it, as Firefox Send did), and the rest is 128 random bits from
:mod:`secrets`. Keys carry no user, guild or channel identifier and no file name, so a
bucket listing or an access log reveals nothing about who exported what.

>>> key = new_object_key(parse_retention("7d"))
>>> key.startswith("ttl-7d/") and len(key) == len("ttl-7d/") + 32
True
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, InvalidReferenceError, ObjectExpiredError, StorageError

#: The retention classes, in days. Each is an S3 lifecycle rule on its own key prefix.
RETENTION_DAYS = (7, 14, 30)
#: SigV4 pre-signed URLs cannot live longer than 7 days (604,800 s).
MAX_LINK_LIFETIME = timedelta(days=7)
#: A link shorter than this is useless to a person; refuse to sign it.
MIN_LINK_LIFETIME = timedelta(seconds=60)
_KEY = re.compile(r"^ttl-(7|14|30)d/[0-9a-f]{32}$")
#: A vaultkit key at the end of a link's path (LocalStore's paths end in ``.zip``).
_KEY_IN_PATH = re.compile(r"(?:^|/)(ttl-(?:7|14|30)d/[0-9a-f]{32})(?:\.zip)?$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, order=True)
class Retention:
    """A retention class: ``7d``, ``14d`` or ``30d``."""

    days: int

    @property
    def label(self) -> str:
        return f"{self.days}d"

    @property
    def prefix(self) -> str:
        return f"ttl-{self.days}d/"

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.days)


def parse_retention(value: str | int | Retention) -> Retention:
    """``"7d"``, ``"14d"``, ``"30d"`` (or 7, 14, 30) as a :class:`Retention`."""
    if isinstance(value, Retention):
        return value
    text = str(value).strip().lower()
    days = text[:-1] if text.endswith("d") else text
    if not days.isdigit() or int(days) not in RETENTION_DAYS:
        raise ConfigError(f"retention must be one of {', '.join(f'{d}d' for d in RETENTION_DAYS)}",
                          reference=str(value)[:20])
    return Retention(int(days))


def new_object_key(retention: Retention) -> str:
    """A fresh key ``ttl-<N>d/<128 random bits as hex>``."""
    return f"{retention.prefix}{secrets.token_hex(16)}"


def check_object_key(key: str) -> Retention:
    """Refuse anything that is not a key vaultkit made (so ``revoke`` deletes nothing else)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidReferenceError("not a vaultkit object key (expected ttl-<N>d/<32 hex>)",
                                    reference=str(key)[:100])
    return Retention(int(key.split("-", 1)[1].split("d", 1)[0]))


def key_in_link_path(path: str) -> str | None:
    """The vaultkit object key a (URL-decoded) link path ends with, if any."""
    match = _KEY_IN_PATH.search(path)
    return match.group(1) if match else None


def candidate_keys(share_id: str) -> list[str]:
    """The object keys a share id may name: the key itself, or its 32 hex digits alone
    (then one key per retention class, for the caller to probe)."""
    text = share_id.strip()
    if _KEY.match(text):
        return [text]
    if _HEX_ID.match(text):
        return [f"ttl-{days}d/{text}" for days in RETENTION_DAYS]
    return []


def link_expiry(now: datetime, object_expires_at: datetime, *,
                credentials_expire_at: datetime | None = None,
                max_lifetime: timedelta | None = None) -> datetime:
    """When a new link must stop working: the earliest of the object's expiry, now + 7 days,
    the signing credentials' own expiry (an STS session's URLs die with it), and an optional
    caller cap. Raises :class:`StorageError` if that leaves less than a minute.

    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> link_expiry(t, t + timedelta(days=30)) - t
    datetime.timedelta(days=7)
    """
    candidates = [object_expires_at, now + MAX_LINK_LIFETIME]
    if credentials_expire_at is not None:
        candidates.append(credentials_expire_at)
    if max_lifetime is not None:
        candidates.append(now + min(max_lifetime, MAX_LINK_LIFETIME))
    deadline = min(candidates)
    if deadline - now < MIN_LINK_LIFETIME:
        if deadline == object_expires_at:
            raise ObjectExpiredError("the object has expired (or expires within a minute)")
        raise StorageError("cannot sign a link: the credentials or cap leave less than a minute")
    return deadline.replace(microsecond=0)


_SIGNED_PARAMS = {"x-amz-signature", "x-amz-security-token", "x-amz-credential", "signature",
                  "awsaccesskeyid"}


def redact_url(url: str) -> str:
    """The URL with its signature (and session token, credential) replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, "***" if k.lower() in _SIGNED_PARAMS else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/")))


@dataclass(frozen=True)
class Link:
    """A download link. ``url`` is a bearer credential for the ciphertext: its ``repr``
    hides the signature, so it does not end up whole in logs."""

    url: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Link(url={redact_url(self.url)!r}, expires_at={self.expires_at.isoformat()!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object: never anything about its contents or owner."""

    key: str
    size: int
    created_at: datetime
    expires_at: datetime
    sha256: str | None = None
    #: When the latest link handed out for it stops working (``None``: not recorded).
    link_expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class Upload:
    """A streaming upload. Write bytes, then :meth:`commit`; any error aborts it.

    Use it as a context manager: leaving the block with an exception calls
    :meth:`abort`, so no partial object (or open multipart upload) is left behind.
    """

    def __init__(self, key: str, expires_at: datetime) -> None:
        self.key = key
        self.expires_at = expires_at
        self.size = 0
        self._hash = hashlib.sha256()
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise StorageError("upload already finished", reference=self.key)
        n = len(data)
        self._hash.update(data)
        self.size += n
        try:
            self._write(bytes(data))
        except BaseException:
            self.abort()
            raise
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit(self) -> ObjectInfo:
        if self._done:
            raise StorageError("upload already finished", reference=self.key)
        try:
            info = self._commit()
        except BaseException:
            self.abort()
            raise
        self._done = True
        return info

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._abort()

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    # Implementations fill these in.
    def _write(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _commit(self) -> ObjectInfo:  # pragma: no cover - abstract
        raise NotImplementedError

    def _abort(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@runtime_checkable
class ObjectStore(Protocol):
    """Where exports live until their retention ends.

    >>> store = get_store("memory://demo")  # doctest: +SKIP
    >>> key = store.new_key(parse_retention("7d"))  # doctest: +SKIP
    """

    uri: str

    def ensure(self) -> None:
        """Create the bucket/folder and its retention, encryption and access settings."""

    def new_key(self, retention: Retention) -> str:
        """A fresh random key in the retention class."""

    def open_upload(self, key: str, *, expires_at: datetime) -> Upload:
        """Start a streaming upload of ``key`` that must be gone by ``expires_at``."""

    def head(self, key: str) -> ObjectInfo:
        """The object's size and expiry; :class:`NotFoundError` if absent."""

    def read(self, key: str) -> Iterator[bytes]:
        """The object's bytes; refuses an expired object (:class:`ObjectExpiredError`)."""

    def link(self, key: str, *, filename: str, max_lifetime: timedelta | None = None) -> Link:
        """A download link that expires no later than the object does; the store records
        its expiry (``ObjectInfo.link_expires_at``)."""

    def objects(self) -> list[ObjectInfo]:
        """Every vaultkit object in the store (expired ones too, until purged), oldest first.
        Files or objects with other names are never listed."""

    def key_for_link(self, link: str) -> str:
        """The object key a link from this store points at; :class:`InvalidReferenceError`
        for anything else (another store's link, a foreign path)."""

    def delete(self, key: str) -> bool:
        """Delete now (``revoke``). ``True`` if the object existed."""

    def purge(self) -> int:
        """Delete every expired object now; returns how many were removed."""


__all__ = [
    "MAX_LINK_LIFETIME",
    "RETENTION_DAYS",
    "Link",
    "ObjectInfo",
    "ObjectStore",
    "Retention",
    "Upload",
    "candidate_keys",
    "check_object_key",
    "key_in_link_path",
    "link_expiry",
    "new_object_key",
    "parse_retention",
    "redact_url",
    "utcnow",
]
