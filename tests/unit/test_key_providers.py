"""Key-provider contract for the providers that need no server: memory and local."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from contracts.key_provider import KeyProviderContract
from harness.keyring_backend import MemoryKeyring
from vaultkit.config import Config, LocalKeySettings
from vaultkit.errors import (
    ConfigError,
    InsecureFileError,
    InvalidReferenceError,
    NotFoundError,
)
from vaultkit.keys import KeyProvider, get_key_provider
from vaultkit.keys.local import LocalKeyProvider, LocalKeyStore
from vaultkit.keys.memory import MemoryKeyProvider


class TestMemoryProvider(KeyProviderContract):
    @pytest.fixture
    def provider(self) -> KeyProvider:
        return MemoryKeyProvider("contract")

    @pytest.fixture
    def other_provider(self) -> KeyProvider:
        return MemoryKeyProvider("contract")  # same name, different random key

    def test_same_uri_same_provider(self) -> None:
        assert get_key_provider("memory://x") is get_key_provider("memory://x")


def _file_config(tmp_path: Path) -> Config:
    return Config(local_keys=LocalKeySettings(store="file", directory=str(tmp_path / "keys")))


class TestLocalFileProvider(KeyProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> KeyProvider:
        config = _file_config(tmp_path)
        LocalKeyStore(config).create("default")
        return get_key_provider("local://default", config=config)

    @pytest.fixture
    def other_provider(self, tmp_path: Path) -> KeyProvider:
        config = _file_config(tmp_path / "other")
        LocalKeyStore(config).create("default")
        return LocalKeyProvider("default", config=config)

    def test_key_file_is_0600(self, tmp_path: Path) -> None:
        config = _file_config(tmp_path)
        path = LocalKeyStore(config).create("k1")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_world_readable_key_is_refused(self, tmp_path: Path) -> None:
        config = _file_config(tmp_path)
        path = LocalKeyStore(config).create("k2")
        os.chmod(path, 0o644)
        with pytest.raises(InsecureFileError, match="chmod 600"):
            LocalKeyProvider("k2", config=config)

    def test_group_readable_key_is_refused(self, tmp_path: Path) -> None:
        config = _file_config(tmp_path)
        path = LocalKeyStore(config).create("k3")
        os.chmod(path, 0o640)
        with pytest.raises(InsecureFileError):
            LocalKeyProvider("k3", config=config)

    def test_missing_key_says_how_to_create_it(self, tmp_path: Path) -> None:
        with pytest.raises(NotFoundError, match="init-local"):
            LocalKeyProvider("absent", config=_file_config(tmp_path))

    def test_create_refuses_to_overwrite(self, tmp_path: Path) -> None:
        store = LocalKeyStore(_file_config(tmp_path))
        store.create("k4")
        with pytest.raises(ConfigError, match="refusing"):
            store.create("k4")

    @pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65])
    def test_hostile_names_are_refused(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(ConfigError):
            LocalKeyStore(_file_config(tmp_path)).key_path(name)


class TestLocalKeyringProvider(KeyProviderContract):
    @pytest.fixture(autouse=True)
    def _keyring(self, memory_keyring: MemoryKeyring) -> MemoryKeyring:
        return memory_keyring

    @pytest.fixture
    def provider(self, tmp_path: Path) -> KeyProvider:
        config = replace(_file_config(tmp_path), local_keys=LocalKeySettings(store="auto"))
        assert LocalKeyStore(config).create("default") == "keyring"
        return get_key_provider("local://default", config=config)

    @pytest.fixture
    def other_provider(self, tmp_path: Path, memory_keyring: MemoryKeyring) -> KeyProvider:
        config = Config(local_keys=LocalKeySettings(store="keyring"))
        LocalKeyStore(config).create("other")
        provider = LocalKeyProvider("other", config=config)
        return provider

    def test_auto_uses_keyring_and_writes_no_file(self, tmp_path: Path) -> None:
        config = Config(local_keys=LocalKeySettings(store="auto",
                                                    directory=str(tmp_path / "keys")))
        LocalKeyStore(config).create("kr")
        assert not (tmp_path / "keys").exists()
        assert LocalKeyProvider("kr", config=config).describe()["store"] == "keyring"


@pytest.mark.parametrize("uri", ["", "nope", "gcpkms://x", "memory://", "transit://onlymount",
                                 "LOCAL://x"])
def test_bad_uris_are_configuration_errors(uri: str) -> None:
    with pytest.raises(InvalidReferenceError):
        get_key_provider(uri)
