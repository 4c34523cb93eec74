"""Keysets: states, storage, wrapping contexts, and one unwrap per data key per process."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from vaultkit.errors import (
    ConfigError,
    DecryptionError,
    InvalidReferenceError,
    KeyProviderError,
    KeysetConflictError,
    KeysetError,
    NotFoundError,
)
from vaultkit.fields import FieldCipher, Keyset
from vaultkit.fields.keyset import forget_unwrapped_keys
from vaultkit.keys import KeyProvider, get_key_provider
from vaultkit.keys.local import LocalKeyStore
from vaultkit.secret import Secret

CTX = {"table": "t", "column": "c", "row": "1"}


class CountingProvider:
    """Wraps a real provider and counts unwraps (decrypt_data_key calls)."""

    def __init__(self, inner: KeyProvider) -> None:
        self.inner = inner
        self.unwraps = 0
        self.lock = threading.Lock()

    def generate_data_key(self, *, context: Any = None) -> Any:
        return self.inner.generate_data_key(context=context)

    def encrypt_data_key(self, plaintext: bytes, *, context: Any = None) -> bytes:
        return self.inner.encrypt_data_key(plaintext, context=context)

    def decrypt_data_key(self, wrapped: bytes, *, context: Any = None) -> Secret[bytes]:
        with self.lock:
            self.unwraps += 1
        return self.inner.decrypt_data_key(wrapped, context=context)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    forget_unwrapped_keys()


@pytest.fixture
def local_kek() -> str:
    name = f"fields-{os.urandom(3).hex()}"
    LocalKeyStore().create(name)
    return f"local://{name}"


def test_create_rotate_promote_retire(local_kek: str) -> None:
    ks = Keyset.create("users", kek=local_kek)
    first = ks.primary_id
    assert ks.key_info(first) == ("primary", "xaes-256-gcm")
    staged = ks.add_key()
    assert ks.key_info(staged) == ("decrypt-only", "xaes-256-gcm")
    assert ks.primary_id == first
    ks.promote(staged)
    assert ks.primary_id == staged and ks.key_info(first)[0] == "decrypt-only"
    with pytest.raises(KeysetError):
        ks.retire(staged)  # the primary
    ks.retire(first)
    assert ks.key_info(first)[0] == "retired"
    with pytest.raises(KeysetError):
        ks.promote(first)
    with pytest.raises(KeysetError):
        ks.data_key(first)
    with pytest.raises(KeysetError):
        ks.retire(0x12345678)
    assert len({k.id for k in ks.all_keys()}) == 2
    assert ks.index_versions() == [(1, "active")]


def test_file_storage_round_trip_and_mode(tmp_path: Path, local_kek: str,
                                          leak_canary: Any) -> None:
    uri = f"file://{tmp_path}/ks/users.json"
    ks = Keyset.create("users", kek=local_kek)
    ks.save(uri, create=True)
    path = tmp_path / "ks" / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeysetConflictError, match="refusing to replace"):
        Keyset.create("users", kek=local_kek).save(uri, create=True)
    blob = FieldCipher(ks).encrypt(b"v", context=CTX)
    forget_unwrapped_keys()
    loaded = Keyset.load(uri)
    assert FieldCipher(loaded).decrypt(blob, context=CTX) == b"v"
    doc = json.loads(path.read_text())
    secret = ks.data_key(ks.primary_id)
    assert isinstance(secret, Secret) and "*" in repr(secret)
    key = secret.reveal()
    leak_canary.add(key.hex())
    leak_canary.watch(secret)
    leak_canary.watch(ks, loaded, loaded.describe())
    leak_canary.watch_path(tmp_path)
    assert doc["format"] == "vaultkit.keyset.v1" and doc["keys"][0]["wrapped"]
    with pytest.raises(NotFoundError):
        Keyset.load(f"file://{tmp_path}/missing.json")
    with pytest.raises(InvalidReferenceError):
        Keyset.load("s3://bucket/ks")


def test_wrapped_key_is_bound_to_keyset_name_and_id(local_kek: str) -> None:
    ks = Keyset.create("users", kek=local_kek)
    ks.rotate()
    doc = json.loads(ks.to_json())
    doc["keys"][0]["wrapped"], doc["keys"][1]["wrapped"] = (doc["keys"][1]["wrapped"],
                                                            doc["keys"][0]["wrapped"])
    swapped = Keyset.from_json(json.dumps(doc))
    forget_unwrapped_keys()
    with pytest.raises(KeyProviderError):
        swapped.data_key(swapped.primary_id)
    doc = json.loads(ks.to_json())
    doc["name"] = "admins"
    with pytest.raises(KeyProviderError):
        Keyset.from_json(json.dumps(doc)).data_key(ks.primary_id)


def test_malformed_documents_are_config_errors() -> None:
    for bad in ("not json", "{}", json.dumps({"format": "vaultkit.keyset.v1", "name": "x",
                                              "kek": "memory://x", "keys": [
                                                  {"id": "zz", "state": "primary",
                                                   "suite": "xaes-256-gcm", "wrapped": ""}]}),
                json.dumps({"format": "vaultkit.keyset.v1", "name": "x", "kek": "memory://x",
                            "keys": [{"id": "00000001", "state": "decrypt-only",
                                      "suite": "xaes-256-gcm", "wrapped": ""}]})):
        with pytest.raises(ConfigError):
            Keyset.from_json(bad)


def test_one_unwrap_per_data_key_per_process_local(local_kek: str) -> None:
    counting = CountingProvider(get_key_provider(local_kek))
    ks = Keyset.create("users", kek=local_kek, provider=counting)
    blobs = []
    for i in range(3):
        blobs.append(FieldCipher(ks).encrypt(f"v{i}".encode(), context=CTX))
        ks.rotate()
    ks.save("memory://fields-count", create=False)
    assert counting.unwraps == 0  # generated keys are cached at creation
    forget_unwrapped_keys()       # a "new process"

    loaded = Keyset.load("memory://fields-count", provider=counting)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            c = FieldCipher(loaded)
            for _ in range(50):
                for i, b in enumerate(blobs):
                    assert c.decrypt(b, context=CTX) == f"v{i}".encode()
                c.encrypt(b"new", context=CTX)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert counting.unwraps == 4  # three old keys + the primary, once each
    again = Keyset.load("memory://fields-count", provider=counting)  # reload after rotation
    assert FieldCipher(again).decrypt(blobs[0], context=CTX) == b"v0"
    assert counting.unwraps == 4


def test_forked_child_reuses_unwrapped_keys_and_has_fresh_locks(local_kek: str) -> None:
    counting = CountingProvider(get_key_provider(local_kek))
    ks = Keyset.create("fork", kek=local_kek, provider=counting)
    blob = FieldCipher(ks).encrypt(b"v", context=CTX)
    import vaultkit.fields.keyset as mod

    held = mod._cache_lock
    held.acquire()  # a lock held by "another thread" at fork time
    try:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                out = FieldCipher(ks).decrypt(blob, context=CTX)
                ks.rotate()  # needs the cache lock: must not deadlock
                os.write(w, out + str(counting.unwraps).encode())
            finally:
                os._exit(0)
    finally:
        held.release()
    os.close(w)
    got = os.read(r, 100)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"v0"


def test_imported_aes128_key_reads_its_suite(local_kek: str) -> None:
    from vaultkit.fields.cipher import _encrypt_from_parts

    ks = Keyset.create("legacy", kek=local_kek)
    key = os.urandom(16)
    kid = ks.import_key(Secret(key), suite="aes-128-gcm")
    assert ks.key_info(kid) == ("decrypt-only", "aes-128-gcm")
    blob = _encrypt_from_parts(0x03, kid, key, os.urandom(12), b"old", CTX)
    assert FieldCipher(ks).decrypt(blob, context=CTX) == b"old"
    with pytest.raises(KeysetError):
        ks.promote(kid)  # read-only suite
    with pytest.raises(ConfigError):
        ks.import_key(os.urandom(10), suite="aes-128-gcm")
    forget_unwrapped_keys()
    reloaded = Keyset.from_json(ks.to_json())
    assert FieldCipher(reloaded).decrypt(blob, context=CTX) == b"old"
    with pytest.raises(DecryptionError):
        FieldCipher(reloaded).decrypt(blob, context={**CTX, "row": "2"})
