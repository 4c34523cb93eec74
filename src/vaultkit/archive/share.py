"""Share: build, upload and sign in one streaming pass (list, revoke, relink: ``manage``).

The archive bytes flow pyzipper -> hashing sink -> the store's upload (an S3 multipart
upload, a local ``.part`` file, or memory): nothing is written twice and nothing waits
for the whole archive. The password is generated here (or supplied by the caller),
handed to the encrypter, and returned once in :class:`ShareResult`; it is never logged,
audited, stored, or put in object metadata or tags.

>>> from vaultkit.storage import get_store
>>> result = share([("hello.txt", [b"hi"])], store=get_store("memory://doc"), retention="7d")
>>> result.retention, result.size > 0
('7d', True)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import audit
from ..errors import ArchiveError, VaultkitError
from ..secret import Secret
from ..storage import Link, ObjectStore, get_store, parse_retention, redact_url
from ..storage.base import MAX_LINK_LIFETIME, Retention, Upload, utcnow
from .builder import write_archive
from .inputs import InputItem, PlannedEntry, Progress, plan_entries
from .names import check_download_name

logger = logging.getLogger("vaultkit.archive")


@dataclass(frozen=True)
class ShareResult:
    """What the recipient needs (``link``, ``password``) and what the operator keeps
    (``object_key`` to revoke, expiries, size, SHA-256). Immutable; the ``repr`` masks the
    password and the link's signature."""

    link: str = field(repr=False)
    link_expires_at: datetime
    expires_at: datetime
    password: Secret[str] = field(repr=False)
    object_key: str
    size: int
    sha256: str
    retention: str
    filename: str
    store: str
    private: bool

    def __repr__(self) -> str:
        return (f"ShareResult(link={redact_url(self.link)!r}, "
                f"link_expires_at={self.link_expires_at.isoformat()!r}, "
                f"expires_at={self.expires_at.isoformat()!r}, password=Secret('********'), "
                f"object_key={self.object_key!r}, size={self.size}, sha256={self.sha256!r}, "
                f"retention={self.retention!r}, filename={self.filename!r}, "
                f"store={self.store!r}, private={self.private})")

    __str__ = __repr__

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """A JSON-friendly mapping; ``link`` and ``password`` only with ``reveal=True``."""
        data: dict[str, Any] = {
            "link": self.link if reveal else redact_url(self.link),
            "link_expires_at": self.link_expires_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "object_key": self.object_key,
            "size": self.size,
            "sha256": self.sha256,
            "retention": self.retention,
            "filename": self.filename,
            "store": self.store,
            "private": self.private,
        }
        if reveal:
            data["password"] = self.password.reveal()
        return data


class ExportCancelledError(ArchiveError):
    """The export was cancelled (``ashare``/``aexport_chat_log`` task cancelled): the upload
    was aborted and nothing was stored."""

    category = "cancelled"


class _Stoppable:
    """The upload, refusing further bytes once ``stop`` is set: the next write raises, and
    the upload's ``with`` block aborts it. (A worker thread cannot be killed from outside;
    it has to notice, and every archive byte passes through here.)"""

    def __init__(self, upload: Upload, stop: threading.Event) -> None:
        self._upload = upload
        self._stop = stop

    def write(self, data: bytes) -> int:
        if self._stop.is_set():
            raise ExportCancelledError("export cancelled", reference=self._upload.key)
        return self._upload.write(data)

    def flush(self) -> None:
        self._upload.flush()


def _store(store: ObjectStore | str) -> ObjectStore:
    return get_store(store) if isinstance(store, str) else store


def _now(store: ObjectStore) -> datetime:
    clock = getattr(store, "clock", utcnow)
    now: datetime = clock()
    return now


def share(
    inputs: Iterable[InputItem | PlannedEntry],
    *,
    store: ObjectStore | str,
    retention: str | int | Retention = "7d",
    password: Secret[str] | str | None = None,
    private: bool = False,
    filename: str = "export.zip",
    link_lifetime: timedelta | None = None,
    compresslevel: int = 6,
    progress: Progress | None = None,
    threads: int | None = None,
    cancel: threading.Event | None = None,
) -> ShareResult:
    """Encrypt ``inputs`` into a zip, stream it to ``store`` under a random key in the
    retention class, and sign a download link that expires no later than the object.

    On any failure the upload is aborted: no object, no open multipart upload, no link.
    Setting ``cancel`` (from another thread) aborts it the same way at the next write,
    with :class:`ExportCancelledError`; :func:`ashare` uses this.
    """
    st = _store(store)
    ret = parse_retention(retention)
    check_download_name(filename)
    planned = plan_entries(inputs)  # hostile names fail before anything is uploaded
    key = st.new_key(ret)
    target = f"{st.uri}/{key}"
    stop = cancel or threading.Event()
    try:
        if stop.is_set():
            raise ExportCancelledError("export cancelled before it started")
        expires_at = (_now(st) + ret.period).replace(microsecond=0)
        with st.open_upload(key, expires_at=expires_at) as upload:
            info = write_archive(planned, _Stoppable(upload, stop), password=password,
                                 private=private, compresslevel=compresslevel,
                                 threads=threads, progress=progress)
            if stop.is_set():
                raise ExportCancelledError("export cancelled", reference=key)
            upload.commit()
        try:
            cap = min(link_lifetime or MAX_LINK_LIFETIME, expires_at - _now(st))
            link: Link = st.link(key, filename=filename, max_lifetime=cap)
        except BaseException:
            st.delete(key)  # an object nobody can be given a link to is just a liability
            raise
    except VaultkitError as exc:
        audit.record("archive.share", target=target, outcome="error", error=exc.category,
                     retention=ret.label)
        raise
    audit.record("archive.share", target=target, outcome="ok", retention=ret.label,
                 size=info.size, private=private, expires_at=expires_at.isoformat())
    logger.info("shared %s (%d bytes, retention %s)", target, info.size, ret.label)
    return ShareResult(link=link.url, link_expires_at=link.expires_at, expires_at=expires_at,
                       password=info.password, object_key=key, size=info.size,
                       sha256=info.sha256, retention=ret.label, filename=filename,
                       store=st.uri, private=private)


__all__ = ["ExportCancelledError", "ShareResult", "share"]
