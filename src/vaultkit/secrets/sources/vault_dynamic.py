"""``vault+dyn://<path>#key``: a leased secret from any Vault/OpenBao engine that issues them.

Example: ``vault+dyn://database/creds/app#username`` and ``...#password``
share *one* read (the planner dedupes by path), so the username and password
come from the same lease. The lease is renewed by the watcher through
``sys/leases/renew`` and revoked on shutdown through ``sys/leases/revoke``.

A dynamic read creates a credential each time, so the watcher only re-reads
when a lease cannot be renewed any further (max TTL reached, or not renewable).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...backends.vault import VaultClient, vault_client
from ...config import Config
from ...errors import ConfigError, NotFoundError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Call, Fetched, Lease


class VaultDynamicSource(BaseSource):
    schemes: tuple[str, ...] = ("vault+dyn",)

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        from .vault_kv import vault_path

        return vault_path(scheme, locator)

    def __init__(self, *, config: Config | None = None, client: VaultClient | None = None
                 ) -> None:
        self._config = config
        self._client = client

    @property
    def client(self) -> VaultClient:
        if self._client is None:
            self._client = vault_client(self._config)
        return self._client

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        return [Call("vault+dyn", "GET", (u,), target=u.locator) for u in units]

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        body = self.client.read(unit.locator, reference=unit.display,
                                timeout=deadline.remaining() if deadline else None)
        data: Any = body.get("data")
        if not isinstance(data, dict):
            raise NotFoundError("no data at this path", source="vault", reference=unit.display)
        lease = None
        if body.get("lease_id"):
            lease = Lease(str(body["lease_id"]), float(body.get("lease_duration") or 0),
                          bool(body.get("renewable")), time.monotonic())
        return Fetched(Secret(json.dumps(data)), structured=True, lease=lease)

    def renew(self, lease: Lease) -> Lease | None:
        try:
            body = self.client.renew_lease(lease.lease_id)
        except ConfigError:
            return None  # 400: lease unknown, expired or not renewable; fetch again
        if not body.get("lease_id"):
            return None
        return Lease(str(body["lease_id"]), float(body.get("lease_duration") or 0),
                     bool(body.get("renewable")), time.monotonic())

    def revoke(self, lease: Lease) -> None:
        self.client.revoke_lease(lease.lease_id)

    def __repr__(self) -> str:
        return "VaultDynamicSource()"
