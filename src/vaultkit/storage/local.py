"""``file://DIR``: the embedded default store, a folder where every object knows its expiry.

Layout::

    DIR/                         mode 0700
      ttl-7d/<32 hex>.zip        the archive, mode 0600
      ttl-7d/<32 hex>.json       sidecar: created_at, expires_at, size, sha256 (no password)

An upload streams into ``.<hex>.part`` (0600) next to its final name. On commit the data
is fsynced, the sidecar is written atomically (temporary file, fsync, rename), and only
then is the data renamed into place: a reader never sees data without its expiry. A
crash leaves at most a ``.part`` file or a sidecar without data, which :meth:`purge`
removes. The store refuses to read or link an expired object; :meth:`purge` deletes them
(run it from cron or a timer: nothing deletes local files on its own).

A ``file://`` link is a local path, not a bearer URL: anyone who can read the folder can
read the (encrypted) file, so keep the folder private.

>>> store = LocalStore("/tmp/exports")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ObjectExpiredError, StorageError, VaultkitError
from ..files import write_private
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

CHUNK = 1024 * 1024
#: A ``.part`` file older than this belongs to a crashed upload.
STALE_PART_SECONDS = 24 * 3600


def _oserror(what: str, exc: OSError, key: str | None) -> StorageError:
    return StorageError(f"{what}: {exc.strerror or type(exc).__name__}", source="local-store",
                        reference=key)


class _LocalUpload(Upload):
    def __init__(self, store: LocalStore, key: str, expires_at: datetime) -> None:
        super().__init__(key, expires_at)
        self._store = store
        data, _ = store._paths(key)
        self._final = data
        self._tmp = data.with_name(f".{data.stem}.part")
        try:
            data.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise _oserror("cannot start upload", exc, key) from exc
        self._fh = os.fdopen(fd, "wb", buffering=CHUNK)

    def _write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise _oserror("cannot write object", exc, self.key) from exc

    def _commit(self) -> ObjectInfo:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        except OSError as exc:
            raise _oserror("cannot write object", exc, self.key) from exc
        info = ObjectInfo(self.key, self.size, self._store.clock(), self.expires_at, self.sha256)
        _, meta = self._store._paths(self.key)
        write_private(meta, json.dumps(_info_to_json(info), sort_keys=True).encode())
        try:
            os.replace(self._tmp, self._final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                meta.unlink()
            raise _oserror("cannot store object", exc, self.key) from exc
        return info

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._fh.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def _info_to_json(info: ObjectInfo) -> dict[str, Any]:
    return {"version": 1, "key": info.key, "size": info.size, "sha256": info.sha256,
            "created_at": info.created_at.isoformat(), "expires_at": info.expires_at.isoformat()}


class LocalStore:
    """An :class:`ObjectStore` in a local folder (``file://DIR``)."""

    def __init__(self, root: str | os.PathLike[str], *, clock: Clock = utcnow) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = f"file://{self.root}"
        self.clock = clock

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _paths(self, key: str) -> tuple[Path, Path]:
        check_object_key(key)  # also guarantees the key cannot leave the folder
        base = self.root / key
        return base.with_suffix(".zip"), base.with_suffix(".json")

    def ensure(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise _oserror("cannot create the store folder", exc, str(self.root)) from exc

    def new_key(self, retention: Retention) -> str:
        return new_object_key(retention)

    def open_upload(self, key: str, *, expires_at: datetime) -> Upload:
        self.ensure()
        return _LocalUpload(self, key, expires_at)

    def head(self, key: str) -> ObjectInfo:
        data, meta = self._paths(key)
        try:
            raw = json.loads(meta.read_bytes())
            size = data.stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError("no such object", source="local-store", reference=key) from exc
        except (OSError, ValueError) as exc:
            raise StorageError("unreadable object metadata", source="local-store",
                               reference=key) from exc
        return ObjectInfo(key, size, datetime.fromisoformat(raw["created_at"]),
                          datetime.fromisoformat(raw["expires_at"]), raw.get("sha256"))

    def _live(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info.expired(self.clock()):
            raise ObjectExpiredError("the object has expired", source="local-store",
                                     reference=key)
        return info

    def read(self, key: str) -> Iterator[bytes]:
        self._live(key)
        data, _ = self._paths(key)
        try:
            with data.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        except OSError as exc:
            raise _oserror("cannot read object", exc, key) from exc

    def path(self, key: str) -> Path:
        """The archive's path, if the object is still within its retention."""
        self._live(key)
        return self._paths(key)[0]

    def link(self, key: str, *, filename: str, max_lifetime: timedelta | None = None) -> Link:
        info = self._live(key)
        expires = link_expiry(self.clock(), info.expires_at, max_lifetime=max_lifetime)
        return Link(self._paths(key)[0].as_uri(), expires)

    def delete(self, key: str) -> bool:
        data, meta = self._paths(key)
        existed = False
        for p in (data, meta):  # data first: a sidecar alone is harmless, data alone is not
            try:
                p.unlink()
                existed = True
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _oserror("cannot delete object", exc, key) from exc
        return existed

    def purge(self) -> int:
        """Delete expired objects, orphans and stale ``.part`` files. Returns objects removed."""
        now = self.clock()
        removed = 0
        for days in RETENTION_DAYS:
            folder = self.root / f"ttl-{days}d"
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = entry.name
                if name.endswith(".part"):
                    with contextlib.suppress(OSError):
                        if time.time() - entry.stat().st_mtime > STALE_PART_SECONDS:
                            entry.unlink()
                    continue
                if not name.endswith(".json"):
                    if not entry.with_suffix(".json").exists():
                        with contextlib.suppress(OSError):
                            entry.unlink()  # data without expiry: never served, so drop it
                    continue
                key = f"ttl-{days}d/{entry.stem}"
                try:
                    info = self.head(key)
                except NotFoundError:
                    with contextlib.suppress(OSError):
                        entry.unlink()  # a sidecar whose data never arrived
                    continue
                except VaultkitError:
                    continue  # not ours (bad name) or unreadable: leave it for a human
                if info.expired(now) and self.delete(key):
                    removed += 1
        return removed


__all__ = ["LocalStore"]
