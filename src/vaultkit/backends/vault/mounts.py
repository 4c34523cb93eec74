"""KV mount detection: which mount a path lives under, its type and KV version, cached.

:meth:`MountLookups.mount_info` asks ``sys/internal/ui/mounts/<path>`` (the endpoint
the Vault UI and CLI use; any token with a capability on the path may call it) and
caches the answer per mount; a mixin of :class:`~.client.VaultClient`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import VaultkitError


@dataclass(frozen=True)
class MountInfo:
    """A secrets engine mount: its path (no slashes around it), type, and KV version (0 if not KV)."""

    path: str
    type: str
    kv_version: int


class MountLookups:
    """The mount cache of a client (needs ``request`` and ``read_many``)."""

    _lock: threading.RLock
    _mounts: dict[str, MountInfo]
    _mount_gates: dict[str, threading.Lock]

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                reference: str | None = None, authenticated: bool = True,
                timeout: float | None = None,
                params: Mapping[str, str] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def read_many(self, paths: Sequence[str], *,
                  params: Sequence[Mapping[str, str] | None] | None = None,
                  references: Sequence[str | None] | None = None,
                  timeout: float | None = None,
                  connections: int | None = None) -> list[dict[str, Any] | VaultkitError]:
        raise NotImplementedError

    def mount_info(self, path: str, *, timeout: float | None = None) -> MountInfo:
        """The mount ``path`` lives under, its type and KV version (cached per mount).

        >>> vc.mount_info("kv/app/db")      # doctest: +SKIP
        MountInfo(path='kv', type='kv', kv_version=2)
        """
        path = path.strip("/")
        cached = self._cached_mount(path)
        if cached is not None:
            return cached
        # Single flight per first path segment: 16 threads booting at once ask once, not 16x.
        with self._lock:
            gate = self._mount_gates.setdefault(path.split("/", 1)[0], threading.Lock())
        with gate:
            cached = self._cached_mount(path)
            if cached is not None:
                return cached
            body = self.request("GET", f"sys/internal/ui/mounts/{path}", reference=path,
                                timeout=timeout)
            return self._store_mount(path, body)

    def cached_mount(self, path: str) -> MountInfo | None:
        """The mount ``path`` lives under if it was looked up before (no request)."""
        return self._cached_mount(path.strip("/"))

    def _cached_mount(self, path: str) -> MountInfo | None:
        for mount, info in list(self._mounts.items()):
            if path == mount or path.startswith(mount + "/"):
                return info
        return None

    def _store_mount(self, path: str, body: dict[str, Any]) -> MountInfo:
        data = body.get("data") or {}
        mount = str(data.get("path") or path.split("/", 1)[0]).strip("/")
        mtype = str(data.get("type") or "unknown")
        options = data.get("options") or {}
        version = 0
        if mtype in ("kv", "generic"):
            version = 2 if str(options.get("version", "1")) == "2" else 1
        info = MountInfo(mount, mtype, version)
        with self._lock:
            self._mounts[mount] = info
        return info

    def mount_infos(self, paths: Sequence[str], *,
                    timeout: float | None = None) -> list[MountInfo | VaultkitError]:
        """:meth:`mount_info` for several paths, the uncached lookups as one :meth:`read_many`."""
        wanted = [p.strip("/") for p in paths]
        out: list[MountInfo | VaultkitError | None] = [self._cached_mount(p) for p in wanted]
        todo = [i for i, info in enumerate(out) if info is None]
        if todo:
            answers = self.read_many([f"sys/internal/ui/mounts/{wanted[i]}" for i in todo],
                                     references=[wanted[i] for i in todo], timeout=timeout)
            for i, answer in zip(todo, answers, strict=True):
                out[i] = answer if isinstance(answer, VaultkitError) else self._store_mount(
                    wanted[i], answer)
        return [info for info in out if info is not None]


__all__ = ["MountInfo", "MountLookups"]
