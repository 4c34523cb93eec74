"""``vault://<mount>/<path>[?version=N][&kv=1|2]#key``: Vault/OpenBao KV v1 and v2.

The KV version comes from, in order: the reference's ``?kv=``, the
``[secrets.options] kv_versions = {mount = 1}`` table, then detection through
``sys/internal/ui/mounts/<path>`` (cached per mount by :class:`VaultClient`).
If detection is refused (a token without any capability on the mount), v2 is
assumed, since it is the default of ``bao secrets enable kv`` and dev servers.

KV v2 reads ``<mount>/data/<path>?version=N``; a deleted or destroyed version
is *not found*. KV v1 has no versions, so ``?version=`` on a v1 mount is a
configuration error rather than a silently ignored option.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...backends.vault import MountInfo, VaultClient, vault_client
from ...config import Config
from ...errors import AccessDeniedError, ConfigError, NotFoundError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Call, Fetched


class VaultKVSource(BaseSource):
    schemes: tuple[str, ...] = ("vault",)

    def __init__(self, *, config: Config | None = None, client: VaultClient | None = None,
                 kv_versions: Mapping[str, int] | None = None) -> None:
        self._config = config
        self._client = client
        self._kv_versions = {k.strip("/"): int(v) for k, v in (kv_versions or {}).items()}

    @property
    def client(self) -> VaultClient:
        if self._client is None:
            self._client = vault_client(self._config)
        return self._client

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        # Vault has no batch read: one GET per secret path, made in parallel by the loader.
        return [Call("vault", "GET", (u,), target=u.locator + (f"?version={u.version}"
                                                                if u.version else ""))
                for u in units]

    def _mount(self, unit: Reference, deadline: Deadline | None) -> MountInfo:
        forced = unit.option("kv")
        first = unit.locator.split("/", 1)[0]
        configured = self._kv_versions.get(first)
        if forced or configured:
            return MountInfo(first, "kv", int(forced or configured or 2))
        try:
            return self.client.mount_info(unit.locator,
                                          timeout=deadline.remaining() if deadline else None)
        except AccessDeniedError:
            return MountInfo(first, "kv", 2)

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        info = self._mount(unit, deadline)
        if info.kv_version == 0:
            raise ConfigError(f"mount {info.path!r} is a {info.type!r} engine, not KV; use "
                              "vault+dyn:// for dynamic secrets", source="vault",
                              reference=unit.display)
        rest = unit.locator[len(info.path):].strip("/")
        if not rest:
            raise ConfigError("reference names a mount, not a secret", source="vault",
                              reference=unit.display)
        timeout = deadline.remaining() if deadline else None
        if info.kv_version == 1:
            if unit.version:
                raise ConfigError("KV v1 has no versions; drop ?version=", source="vault",
                                  reference=unit.display)
            body = self.client.read(f"{info.path}/{rest}", reference=unit.display,
                                    timeout=timeout)
            data: Any = body.get("data")
            version = None
        else:
            params = {"version": unit.version} if unit.version else None
            body = self.client.read(f"{info.path}/data/{rest}", reference=unit.display,
                                    timeout=timeout, params=params)
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

    def __repr__(self) -> str:
        return "VaultKVSource()"
