"""The keyset-store contract on the stores that need no server: memory:// and file://
(OpenBao and moto run it in tests/integration/test_fields_keyset_store_servers.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from contracts.keyset_store import KeysetStoreContract
from vaultkit.errors import InvalidReferenceError
from vaultkit.fields.keyset_store import KeysetStore, keyset_store


class TestMemoryStore(KeysetStoreContract):
    @pytest.fixture
    def store(self) -> KeysetStore:
        return keyset_store(f"memory://contract-{os.urandom(6).hex()}")


class TestFileStore(KeysetStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> KeysetStore:
        return keyset_store(f"file://{tmp_path}/keysets/users.json")

    def test_file_is_private_and_replaced_atomically(self, store: KeysetStore,
                                                     tmp_path: Path) -> None:
        store.write('{"a": 1}', create=True)
        path = tmp_path / "keysets" / "users.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "keysets" / "users.json.lock").stat().st_mode) == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == ["users.json", "users.json.lock"]

    def test_an_edit_outside_vaultkit_is_a_conflict(self, store: KeysetStore,
                                                    tmp_path: Path) -> None:
        from vaultkit.errors import KeysetConflictError

        version = store.write('{"a": 1}', create=True)
        (tmp_path / "keysets" / "users.json").write_text('{"a": 2}')
        with pytest.raises(KeysetConflictError):
            store.write('{"a": 3}', version=version)


@pytest.mark.parametrize("uri", ["users.json", "s3://bucket/k", "vault://only-mount", "file://",
                                 None])
def test_bad_locations(uri: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        keyset_store(uri)
    assert info.value.__cause__ is None and info.value.__context__ is None
