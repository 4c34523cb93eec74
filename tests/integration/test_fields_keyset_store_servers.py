"""The keyset-store contract against real servers: OpenBao KV v2 (vault://) and Secrets
Manager on moto over HTTP (awssm://)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from contracts.keyset_store import KeysetStoreContract
from harness.servers import Moto, OpenBao
from vaultkit.fields.keyset_store import KeysetStore, keyset_store

pytestmark = pytest.mark.integration


class TestVaultStore(KeysetStoreContract):
    @pytest.fixture
    def config(self, openbao: OpenBao) -> Any:
        return openbao.config()

    @pytest.fixture
    def store(self, config: Any) -> KeysetStore:
        return keyset_store(f"vault://secret/vaultkit/contract/{os.urandom(6).hex()}",
                            config=config)


class TestSecretsManagerStore(KeysetStoreContract):
    @pytest.fixture
    def config(self, moto_server: Moto) -> Any:
        return moto_server.config()

    @pytest.fixture
    def store(self, config: Any) -> KeysetStore:
        return keyset_store(f"awssm://vaultkit/contract/{os.urandom(6).hex()}", config=config)
