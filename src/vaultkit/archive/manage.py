"""Managing shares after they are sent: list them, revoke one, give a fresh link.

A share is named by its **id**, the object key ``ttl-<N>d/<32 hex>`` that
:class:`~vaultkit.archive.ShareResult` returns as ``object_key``. :func:`revoke` and
:func:`relink` also take the 32 hex digits alone, or **the link the user received** (a
pre-signed S3 URL, a ``file://`` path): a user who says "kill this link" need not know
the id. A link from another bucket, prefix or folder is refused, never guessed at.

>>> from vaultkit.storage import get_store
>>> from vaultkit.archive import share
>>> store = get_store("memory://manage-doc")
>>> result = share([("a.txt", [b"hi"])], store=store, retention="30d")
>>> [s.state for s in list_shares(store=store)]
['active']
>>> revoke(result.link, store=store)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import audit
from ..errors import InvalidReferenceError, NotFoundError
from ..storage import Link, ObjectInfo, ObjectStore, get_store
from ..storage.base import candidate_keys, check_object_key
from .names import check_download_name

#: ``active``: the object is within its retention and its latest link still works.
#: ``link-expired``: the object is still there but its link has lapsed (7-day cap, STS
#: session, ``--link-minutes``): ``relink`` gives a new one.
#: ``expired``: retention is over; the store refuses it and ``purge``/lifecycle deletes it.
STATES = ("active", "link-expired", "expired")


@dataclass(frozen=True)
class ShareInfo:
    """One share as ``archive list`` shows it; nothing secret (no link, no password)."""

    id: str
    retention: str
    created_at: datetime
    expires_at: datetime
    link_expires_at: datetime | None
    state: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "retention": self.retention,
                "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "link_expires_at": self.link_expires_at.isoformat()
                if self.link_expires_at else None,
                "state": self.state, "size": self.size}


def _store(store: ObjectStore | str) -> ObjectStore:
    return get_store(store) if isinstance(store, str) else store


def _now(store: ObjectStore) -> datetime:
    from ..storage.base import utcnow

    now: datetime = getattr(store, "clock", utcnow)()
    return now


def share_state(info: ObjectInfo, now: datetime) -> str:
    if info.expired(now):
        return "expired"
    if info.link_expires_at is None or now >= info.link_expires_at:
        return "link-expired"
    return "active"


def list_shares(*, store: ObjectStore | str) -> list[ShareInfo]:
    """Every share in the store, oldest first, with its state (see :data:`STATES`)."""
    st = _store(store)
    now = _now(st)
    return [ShareInfo(id=i.key, retention=check_object_key(i.key).label, created_at=i.created_at,
                      expires_at=i.expires_at, link_expires_at=i.link_expires_at,
                      state=share_state(i, now), size=i.size) for i in st.objects()]


def resolve_share(ref: str, *, store: ObjectStore | str) -> str:
    """The object key for an id, its 32 hex digits, or a link from this store.

    :class:`NotFoundError` if a bare hex id matches no object;
    :class:`InvalidReferenceError` for anything that is not one of those forms.
    """
    st = _store(store)
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidReferenceError("empty share id")
    if "://" in ref:
        return st.key_for_link(ref)
    keys = candidate_keys(ref)
    if not keys:
        raise InvalidReferenceError(
            "not a share id (ttl-<N>d/<32 hex>, the 32 hex digits, or the share's link)",
            reference=ref[:100])
    if len(keys) == 1:
        return keys[0]
    for key in keys:
        try:
            st.head(key)
        except NotFoundError:
            continue
        return key
    raise NotFoundError("no share with this id", source=st.uri, reference=ref[:100])


def revoke(ref: str, *, store: ObjectStore | str) -> bool:
    """Delete a share now (by id or by its link); its links stop working.

    ``True`` if it existed, ``False`` if it was already gone.
    """
    st = _store(store)
    try:
        key = resolve_share(ref, store=st)
    except NotFoundError:
        return False
    existed = st.delete(key)
    audit.record("archive.revoke", target=f"{st.uri}/{key}",
                 outcome="ok" if existed else "not_found")
    return existed


def relink(ref: str, *, store: ObjectStore | str, filename: str = "export.zip",
           link_lifetime: timedelta | None = None) -> Link:
    """A fresh link for a share (by id or by an old link).

    It expires at the earliest of the share's remaining retention, 7 days (SigV4's cap),
    the signing credentials' own expiry and ``link_lifetime``; the store records it, so
    :func:`list_shares` shows the share as ``active`` again.
    """
    st = _store(store)
    check_download_name(filename)
    key = resolve_share(ref, store=st)
    link = st.link(key, filename=filename, max_lifetime=link_lifetime)
    audit.record("archive.relink", target=f"{st.uri}/{key}", outcome="ok",
                 link_expires_at=link.expires_at.isoformat())
    return link


__all__ = ["STATES", "ShareInfo", "list_shares", "relink", "resolve_share", "revoke",
           "share_state"]
