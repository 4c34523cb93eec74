"""``memory://<name>``: a process-local object store, for tests and demos.

The same name gives the same store for the life of the process. It keeps each object's
expiry and refuses to serve an expired object, like :class:`LocalStore`.

>>> from vaultkit.storage import get_store, parse_retention
>>> store = get_store("memory://doc")
>>> key = store.new_key(parse_retention("7d"))
>>> with store.open_upload(key, expires_at=store.clock() + parse_retention("7d").period) as up:
...     _ = up.write(b"zip bytes")
...     info = up.commit()
>>> b"".join(store.read(key))
b'zip bytes'
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from ..errors import InvalidReferenceError, NotFoundError, ObjectExpiredError
from .base import (
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

_lock = threading.Lock()
_stores: dict[str, MemoryStore] = {}


@dataclass
class _Object:
    data: bytes
    info: ObjectInfo


class _MemoryUpload(Upload):
    def __init__(self, store: MemoryStore, key: str, expires_at: datetime) -> None:
        super().__init__(key, expires_at)
        self._store = store
        self._buf = bytearray()

    def _write(self, data: bytes) -> None:
        self._buf += data

    def _commit(self) -> ObjectInfo:
        info = ObjectInfo(self.key, len(self._buf), self._store.clock(), self.expires_at,
                          self.sha256)
        with self._store._lock:
            self._store._objects[self.key] = _Object(bytes(self._buf), info)
        self._buf = bytearray()
        return info

    def _abort(self) -> None:
        self._buf = bytearray()


class MemoryStore:
    """An in-memory :class:`ObjectStore`."""

    def __init__(self, name: str = "default", *, clock: Clock = utcnow) -> None:
        self.name = name
        self.uri = f"memory://{name}"
        self.clock = clock
        self._lock = threading.Lock()
        self._objects: dict[str, _Object] = {}

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        with _lock:
            store = _stores.get(name)
            if store is None:
                store = _stores[name] = cls(name)
            return store

    def __repr__(self) -> str:
        return f"MemoryStore({self.name!r})"

    def ensure(self) -> None:
        return None

    def new_key(self, retention: Retention) -> str:
        return new_object_key(retention)

    def open_upload(self, key: str, *, expires_at: datetime) -> Upload:
        check_object_key(key)
        return _MemoryUpload(self, key, expires_at)

    def _get(self, key: str) -> _Object:
        check_object_key(key)
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            raise NotFoundError("no such object", source="memory-store", reference=key)
        return obj

    def head(self, key: str) -> ObjectInfo:
        return self._get(key).info

    def read(self, key: str) -> Iterator[bytes]:
        obj = self._get(key)
        if obj.info.expired(self.clock()):
            raise ObjectExpiredError("the object has expired", source="memory-store",
                                     reference=key)
        yield obj.data

    def link(self, key: str, *, filename: str, max_lifetime: timedelta | None = None) -> Link:
        obj = self._get(key)
        if obj.info.expired(self.clock()):
            raise ObjectExpiredError("the object has expired", source="memory-store",
                                     reference=key)
        expires = link_expiry(self.clock(), obj.info.expires_at, max_lifetime=max_lifetime)
        with self._lock:
            obj.info = replace(obj.info, link_expires_at=expires)
        return Link(f"{self.uri}/{key}?filename={quote(filename)}", expires)

    def key_for_link(self, link: str) -> str:
        parts = urlsplit(link.strip())
        key = key_in_link_path(parts.path)
        if parts.scheme == "memory" and parts.netloc == self.name and key is not None \
                and parts.path == f"/{key}":
            return key
        raise InvalidReferenceError("not a link to this store's objects",
                                    reference=link.split("?", 1)[0][:200])

    def objects(self) -> list[ObjectInfo]:
        with self._lock:
            infos = [o.info for o in self._objects.values()]
        return sorted(infos, key=lambda i: (i.created_at, i.key))

    def delete(self, key: str) -> bool:
        check_object_key(key)
        with self._lock:
            return self._objects.pop(key, None) is not None

    def purge(self) -> int:
        now = self.clock()
        with self._lock:
            gone = [k for k, o in self._objects.items() if o.info.expired(now)]
            for k in gone:
                del self._objects[k]
        return len(gone)


__all__ = ["MemoryStore"]
