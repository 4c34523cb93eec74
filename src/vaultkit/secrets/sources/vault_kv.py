"""``vault://<mount>/<path>[?version=N][&kv=1|2]#key``: Vault/OpenBao KV v1 and v2.

The KV version comes from, in order: the reference's ``?kv=``, the
``[secrets.options] kv_versions = {mount = 1}`` table, then detection through
``sys/internal/ui/mounts/<path>`` (cached per mount by :class:`VaultClient`).
If detection is refused (a token without any capability on the mount), v2 is
assumed, since it is the default of ``bao secrets enable kv`` and dev servers.

KV v2 reads ``<mount>/data/<path>?version=N``; a deleted or destroyed version
is *not found*. KV v1 has no versions, so ``?version=`` on a v1 mount is a
configuration error rather than a silently ignored option.

A boot's reads are one planned call: :meth:`VaultClient.read_many` sends them
from one thread over up to ``connections`` keep-alive connections (the mount
lookups first, also as one batch, once per mount). Items that fail with a
transient error come back as single-read follow-ups, which the loader retries
with its backoff through the ordinary path (fail-over included).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...backends.vault import MountInfo, VaultClient, vault_client
from ...config import Config
from ...errors import (
    AccessDeniedError,
    ConfigError,
    DeadlineExceededError,
    InvalidReferenceError,
    NotFoundError,
    VaultkitError,
)
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Call, CallResult, Fetched

if TYPE_CHECKING:
    from ..wildcards import Expansion


def vault_path(scheme: str, locator: str) -> str:
    path = locator.strip("/")
    if "/" not in path:
        raise InvalidReferenceError(f"{scheme}:// needs <mount>/<path>")
    return path


class VaultKVSource(BaseSource):
    schemes: tuple[str, ...] = ("vault",)
    options = frozenset({"version", "kv"})

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        if options.get("kv") not in (None, "1", "2"):
            raise InvalidReferenceError("kv must be 1 or 2")
        version = options.get("version")
        if version is not None and not version.isdigit():
            raise InvalidReferenceError("version must be a positive integer")
        return vault_path(scheme, locator)

    def __init__(self, *, config: Config | None = None, client: VaultClient | None = None,
                 kv_versions: Mapping[str, int] | None = None, connections: int = 16,
                 batch: bool = True) -> None:
        self._config = config
        self._client = client
        self._kv_versions = {k.strip("/"): int(v) for k, v in (kv_versions or {}).items()}
        self.connections = max(1, connections)
        #: False: one call (one loader thread task) per read instead of one batch.
        self.batch = batch

    @property
    def client(self) -> VaultClient:
        if self._client is None:
            self._client = vault_client(self._config)
        return self._client

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        # Vault has no batch read API: the reads are one batch of GETs that
        # VaultClient.read_many runs on its thread pool, or (a single read, or
        # batch=False) one call each.
        if self.batch and len(units) > 1:
            k = min(len(units), self.connections)
            return [Call("vault", f"GET x{len(units)}", tuple(units),
                         target=f"(in parallel over {k} connection{'s' if k > 1 else ''})")]
        return [Call("vault", "GET", (u,), target=u.locator + (f"?version={u.version}"
                                                                if u.version else ""))
                for u in units]

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        if len(call.units) == 1:
            return super().execute(call, deadline)
        result = CallResult()
        infos = self._mounts(call.units, deadline, result)
        reads: list[tuple[Reference, MountInfo, str, dict[str, str] | None]] = []
        for unit, info in infos:
            try:
                path, params = self._read_path(unit, info)
            except VaultkitError as exc:
                result.results[unit.unit] = exc
                continue
            reads.append((unit, info, path, params))
        answers = self.client.read_many(
            [r[2] for r in reads], params=[r[3] for r in reads],
            references=[r[0].display for r in reads], timeout=deadline.remaining(),
            connections=self.connections) if reads else []
        for (unit, info, _, _), answer in zip(reads, answers, strict=True):
            try:
                if isinstance(answer, VaultkitError):
                    raise answer
                result.results[unit.unit] = self._fetched(unit, info, answer)
            except VaultkitError as exc:
                self._settle_error(result, unit, exc)
        return result

    @staticmethod
    def _settle_error(result: CallResult, unit: Reference, exc: VaultkitError) -> None:
        if exc.retryable:
            # Retried alone through the ordinary path, with the loader's backoff.
            result.followups.append(Call("vault", "GET", (unit,), target=unit.locator))
        else:
            result.results[unit.unit] = exc

    def _mounts(self, units: Sequence[Reference], deadline: Deadline, result: CallResult
                ) -> list[tuple[Reference, MountInfo]]:
        """Each unit's mount; unknown mounts looked up as one batch per round, once per mount."""
        known: dict[int, MountInfo] = {}
        todo: list[int] = []
        for i, unit in enumerate(units):
            info = self._forced_mount(unit)
            if info is not None:
                known[i] = info
            else:
                todo.append(i)
        while todo:
            # One lookup per first path segment a round; nested mounts (a/b, a/c) take
            # another round, answered from the cache for every unit under a known mount.
            reps: dict[str, int] = {}
            for i in todo:
                reps.setdefault(units[i].locator.split("/", 1)[0], i)
            answers = self.client.mount_infos([units[i].locator for i in reps.values()],
                                              timeout=deadline.remaining())
            failed: dict[str, VaultkitError] = {}
            for first, answer in zip(reps, answers, strict=True):
                if isinstance(answer, AccessDeniedError):
                    known.update({i: MountInfo(first, "kv", 2) for i in todo
                                  if units[i].locator.split("/", 1)[0] == first})
                elif isinstance(answer, VaultkitError):
                    failed[first] = answer
            rest: list[int] = []
            for i in todo:
                if i in known:
                    continue
                first = units[i].locator.split("/", 1)[0]
                cached = None if first in failed else self.client.cached_mount(units[i].locator)
                if cached is not None:
                    known[i] = cached
                elif first in failed:
                    self._settle_error(result, units[i], failed[first])
                elif i in reps.values():  # pragma: no cover - a lookup always caches its mount
                    self._settle_error(result, units[i], ConfigError("mount lookup failed"))
                else:
                    rest.append(i)
            todo = rest
        return [(units[i], known[i]) for i in sorted(known)]

    def _forced_mount(self, unit: Reference) -> MountInfo | None:
        forced = unit.option("kv")
        first = unit.locator.split("/", 1)[0]
        configured = self._kv_versions.get(first)
        if forced or configured:
            return MountInfo(first, "kv", int(forced or configured or 2))
        return None

    def _mount(self, unit: Reference, deadline: Deadline | None) -> MountInfo:
        info = self._forced_mount(unit)
        if info is not None:
            return info
        try:
            return self.client.mount_info(unit.locator,
                                          timeout=deadline.remaining() if deadline else None)
        except AccessDeniedError:
            return MountInfo(unit.locator.split("/", 1)[0], "kv", 2)

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        info = self._mount(unit, deadline)
        path, params = self._read_path(unit, info)
        body = self.client.read(path, reference=unit.display,
                                timeout=deadline.remaining() if deadline else None,
                                params=params)
        return self._fetched(unit, info, body)

    @staticmethod
    def _read_path(unit: Reference, info: MountInfo) -> tuple[str, dict[str, str] | None]:
        """The API path (and query) reading ``unit`` on its mount; ConfigError if it cannot."""
        if info.kv_version == 0:
            raise ConfigError(f"mount {info.path!r} is a {info.type!r} engine, not KV; use "
                              "vault+dyn:// for dynamic secrets", source="vault",
                              reference=unit.display)
        rest = unit.locator[len(info.path):].strip("/")
        if not rest:
            raise ConfigError("reference names a mount, not a secret", source="vault",
                              reference=unit.display)
        if info.kv_version == 1:
            if unit.version:
                raise ConfigError("KV v1 has no versions; drop ?version=", source="vault",
                                  reference=unit.display)
            return f"{info.path}/{rest}", None
        return (f"{info.path}/data/{rest}",
                {"version": str(unit.version)} if unit.version else None)

    @staticmethod
    def _fetched(unit: Reference, info: MountInfo, body: dict[str, Any]) -> Fetched:
        version = None
        if info.kv_version == 1:
            data: Any = body.get("data")
        else:
            outer = body.get("data") or {}
            data = outer.get("data")
            meta = outer.get("metadata") or {}
            version = str(meta.get("version")) if meta.get("version") is not None else None
            if data is None and (meta.get("deletion_time") or meta.get("destroyed")):
                raise NotFoundError("this version was deleted or destroyed", source="vault",
                                    reference=unit.display)
        if not isinstance(data, dict):
            raise NotFoundError("no data at this path", source="vault", reference=unit.display)
        return Fetched(Secret(json.dumps(data)), structured=True, version=version)

    # -- wildcards: vault://mount/path/* (the secrets directly under path) and /** (recursive)

    def expand(self, ref: Reference, deadline: Deadline) -> Expansion:
        """LIST the path (``metadata/`` on KV v2), recursing into folders for ``/**``."""
        from ..wildcards import Expansion, concrete, relative

        info = self._mount(replace(ref, locator=ref.base), deadline)
        if info.kv_version == 0:
            raise ConfigError(f"mount {info.path!r} is not a KV engine", source="vault",
                              reference=ref.display)
        start = ref.base[len(info.path):].strip("/")
        listed = f"{info.path}/metadata" if info.kv_version == 2 else info.path
        expansion = Expansion(per_key=True)
        folders = [start]
        query = f"?kv={ref.option('kv')}" if ref.option("kv") else ""
        while folders:
            if deadline.expired:  # each LIST gets a minimum time: the walk needs its own stop
                raise DeadlineExceededError(
                    f"the folders under this path were still being listed after "
                    f"{len(expansion.calls)} LIST call(s) when the deadline passed",
                    source="vault", reference=ref.display)
            folder = folders.pop(0)
            path = f"{listed}/{folder}".rstrip("/")
            expansion.calls.append(f"vault: LIST {path}")
            try:
                keys = self._list(path, ref, deadline)
            except NotFoundError:
                if folder == start and not ref.optional:
                    raise NotFoundError("nothing is listed under this path", source="vault",
                                        reference=ref.display) from None
                continue
            for key in keys:
                below = f"{folder}/{key}".strip("/")
                if key.endswith("/"):
                    if ref.wildcard == "**":
                        folders.append(below.rstrip("/"))
                    continue
                locator = f"{info.path}/{below}"
                expansion.items.append((relative(start, below),
                                        concrete(ref, locator, f"vault://{locator}{query}")))
        return expansion

    def _list(self, path: str, ref: Reference, deadline: Deadline) -> list[str]:
        lister = getattr(self.client, "list", None)
        if lister is not None:  # VaultClient.list: the key names
            return [str(k) for k in lister(path, reference=ref.display,
                                           timeout=deadline.remaining())]
        body = self.client.request("LIST", path, reference=ref.display,
                                   timeout=deadline.remaining())
        return [str(k) for k in (body.get("data") or {}).get("keys") or []]

    def __repr__(self) -> str:
        return "VaultKVSource()"
