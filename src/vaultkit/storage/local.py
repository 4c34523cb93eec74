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
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import (
    InvalidReferenceError,
    NotFoundError,
    ObjectExpiredError,
    StorageError,
    VaultkitError,
)
from ..files import write_private
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

CHUNK = 1024 * 1024
#: A ``.part`` file older than this belongs to a crashed upload.
STALE_PART_SECONDS = 24 * 3600
#: A sidecar without its data is only an orphan once it is this old (a commit writes the
#: sidecar a moment before it renames the data into place).
ORPHAN_GRACE_SECONDS = 3600

# The only names purge ever considers. Anything else in the folder (a README, a file a
# human put there, an editor's swap file) belongs to someone else and is never touched.
_DATA = re.compile(r"^([0-9a-f]{32})\.zip$")
_SIDECAR = re.compile(r"^([0-9a-f]{32})\.json$")
_PART = re.compile(r"^\.([0-9a-f]{32})\.part$")
#: files.write_private's temporary name for a sidecar being written:
#: ``.<hex>.json.<random>.tmp`` (the random part's alphabet is tempfile's or hex).
_SIDECAR_TMP = re.compile(r"^\.([0-9a-f]{32})\.json\.[A-Za-z0-9_]{6,16}\.tmp$")


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
            "created_at": info.created_at.isoformat(), "expires_at": info.expires_at.isoformat(),
            "link_expires_at": info.link_expires_at.isoformat() if info.link_expires_at
            else None}


def _age(path: Path) -> float:
    """Seconds since ``path`` was modified; 0 if it vanished meanwhile (never stale)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


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
        link = raw.get("link_expires_at")
        return ObjectInfo(key, size, datetime.fromisoformat(raw["created_at"]),
                          datetime.fromisoformat(raw["expires_at"]), raw.get("sha256"),
                          datetime.fromisoformat(link) if link else None)

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
        data, meta = self._paths(key)
        record = ObjectInfo(info.key, info.size, info.created_at, info.expires_at, info.sha256,
                            expires)
        write_private(meta, json.dumps(_info_to_json(record), sort_keys=True).encode())
        return Link(data.as_uri(), expires)

    def key_for_link(self, link: str) -> str:
        parts = urlsplit(link.strip())
        key = key_in_link_path(unquote(parts.path))
        if parts.scheme == "file" and key is not None \
                and Path(unquote(parts.path)) == self._paths(key)[0]:
            return key
        raise InvalidReferenceError("not a link to this store's objects",
                                    reference=link.split("?", 1)[0][:200])

    def objects(self) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        for days in RETENTION_DAYS:
            folder = self.root / f"ttl-{days}d"
            with contextlib.suppress(FileNotFoundError):
                for entry in folder.iterdir():
                    match = _SIDECAR.match(entry.name)
                    if match is None:
                        continue
                    with contextlib.suppress(VaultkitError):  # half-written or foreign
                        found.append(self.head(f"ttl-{days}d/{match.group(1)}"))
        return sorted(found, key=lambda i: (i.created_at, i.key))

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
        """Delete expired objects and what crashed uploads left. Returns objects removed.

        Safe to run while shares are being made (from cron, a timer, or another thread):

        * Only exact vaultkit names are considered (``<32 hex>.zip``, ``<32 hex>.json``,
          ``.<32 hex>.part`` and the sidecar's own temporary file); foreign files stay.
        * A ``.part`` file or sidecar temporary file is removed only when older than a day:
          younger ones are uploads in progress.
        * A sidecar without data is removed only if no ``.part`` is waiting to become that
          data and the sidecar is over an hour old. The ``.part`` is checked *before* the
          data, so a commit renaming it in between is always seen.
        """
        now = self.clock()
        removed = 0
        for days in RETENTION_DAYS:
            folder = self.root / f"ttl-{days}d"
            try:
                names = sorted(p.name for p in folder.iterdir())
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _oserror("cannot list the store folder", exc, str(folder)) from exc
            for name in names:
                entry = folder / name
                if _PART.match(name) or _SIDECAR_TMP.match(name):
                    if _age(entry) > STALE_PART_SECONDS:
                        with contextlib.suppress(FileNotFoundError):
                            entry.unlink()
                    continue
                data_match = _DATA.match(name)
                if data_match is not None:
                    if not (folder / f"{data_match.group(1)}.json").exists():
                        # Data without its expiry is never served (commit writes the sidecar
                        # first; delete removes the data first): drop it.
                        with contextlib.suppress(FileNotFoundError):
                            entry.unlink()
                    continue
                side_match = _SIDECAR.match(name)
                if side_match is None:
                    continue  # not ours
                hexid = side_match.group(1)
                key = f"ttl-{days}d/{hexid}"
                part = folder / f".{hexid}.part"
                try:
                    info = self.head(key)
                except NotFoundError:
                    if not part.exists() and not (folder / f"{hexid}.zip").exists() \
                            and _age(entry) > ORPHAN_GRACE_SECONDS:
                        with contextlib.suppress(FileNotFoundError):
                            entry.unlink()  # a sidecar whose data never arrived
                    continue
                except VaultkitError:
                    continue  # unreadable (being rewritten, or damaged): leave it for a human
                if info.expired(now) and self.delete(key):
                    removed += 1
        return removed


__all__ = ["LocalStore"]
