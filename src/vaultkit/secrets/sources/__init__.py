"""Secret sources, one module per backend, chosen by reference scheme (never by guessing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...config import Config
from .base import BaseSource, Call, CallResult, Fetched, Lease, SecretSource
from .memory import MemorySource


def default_sources(config: Config | None = None, *, vault: Any = None,
                    overrides: Iterable[SecretSource] = (),
                    kv_versions: Mapping[str, int] | None = None) -> dict[str, SecretSource]:
    """scheme -> source for every scheme, with ``overrides`` replacing the defaults.

    Sources are cheap to build: SDK clients are created on first use.
    """
    from .aws_sm import SecretsManagerSource
    from .aws_ssm import ParameterStoreSource
    from .encrypted_file import EncryptedFileSource
    from .env import EnvSource
    from .keyring import KeyringSource
    from .kms import KmsSource
    from .vault_dynamic import VaultDynamicSource
    from .vault_kv import VaultKVSource

    built: list[SecretSource] = [
        VaultKVSource(config=config, client=vault, kv_versions=kv_versions),
        VaultDynamicSource(config=config, client=vault),
        SecretsManagerSource(config=config),
        ParameterStoreSource(config=config),
        KmsSource(config=config),
        KeyringSource(),
        EnvSource(),
        EncryptedFileSource(config=config),
        _shared_memory,
    ]
    table: dict[str, SecretSource] = {}
    for source in [*built, *overrides]:
        for scheme in source.schemes:
            table[scheme] = source
    return table


#: The process-wide ``memory://`` source used when none is passed explicitly.
_shared_memory = MemorySource()


def memory_source() -> MemorySource:
    """The process-wide in-memory source behind ``memory://`` references."""
    return _shared_memory


__all__ = ["BaseSource", "Call", "CallResult", "Fetched", "Lease", "MemorySource",
           "SecretSource", "default_sources", "memory_source"]
