"""Keysets wrapped by AWS KMS (moto over HTTP) and OpenBao transit, stored in KV and Secrets
Manager; the number of KMS/transit unwrap calls is counted: one per data key per process."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from harness.servers import Moto, OpenBao
from vaultkit.backends import aws
from vaultkit.errors import KeyProviderError, KeysetConflictError
from vaultkit.fields import FieldCipher, Keyset
from vaultkit.fields.keyset import forget_unwrapped_keys
from vaultkit.keys.vault_transit import TransitKeyProvider

pytestmark = pytest.mark.integration

CTX = {"table": "users", "column": "email", "row": "r1"}


def _exercise(ks: Keyset, blobs: list[bytes]) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            c = FieldCipher(ks)
            for _ in range(20):
                for i, b in enumerate(blobs):
                    assert c.decrypt(b, context=CTX) == f"value-{i}".encode()
                c.encrypt(b"x", context=CTX)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _three_key_keyset(name: str, kek: str, config: Any) -> tuple[Keyset, list[bytes]]:
    ks = Keyset.create(name, kek=kek, config=config)
    blobs = []
    for i in range(3):
        blobs.append(FieldCipher(ks).encrypt(f"value-{i}".encode(), context=CTX))
        if i < 2:
            ks.rotate()
    return ks, blobs


def test_kms_wrapped_keyset_in_secrets_manager_counts_calls(moto_server: Moto) -> None:
    config = moto_server.config()
    kms = aws.client("kms", config)
    key_id = kms.create_key(Description="vaultkit-fields")["KeyMetadata"]["KeyId"]
    ks, blobs = _three_key_keyset("users", f"awskms://{key_id}", config)
    ks.save("awssm://vaultkit/fields/users", create=True)

    calls: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    kms.meta.events.register("before-call.kms.*", count)
    forget_unwrapped_keys()  # behave like a fresh process
    loaded = Keyset.load("awssm://vaultkit/fields/users", config=config)
    assert kms.meta.endpoint_url == moto_server.endpoint_url  # real HTTP to moto
    _exercise(loaded, blobs)
    assert calls == {"Decrypt": 3}  # one unwrap per data key, however many fields/threads
    reloaded = Keyset.load("awssm://vaultkit/fields/users", config=config)
    _exercise(reloaded, blobs)
    assert calls == {"Decrypt": 3}

    # KMS enforces the context: a wrapped key copied into another keyset does not unwrap.
    doc = loaded.to_json().replace('"name": "users"', '"name": "admins"')
    forget_unwrapped_keys()
    with pytest.raises(KeyProviderError):
        Keyset.from_json(doc, config=config).data_key(loaded.primary_id)

    loaded.rotate()
    loaded.save()
    assert Keyset.load("awssm://vaultkit/fields/users", config=config).primary_id == \
        loaded.primary_id


@pytest.fixture(scope="module")
def transit(openbao: OpenBao) -> OpenBao:
    openbao.bao("secrets", "enable", "transit", check=False)
    openbao.bao("write", "-f", "transit/keys/fields")
    return openbao


def test_transit_wrapped_keyset_in_kv_counts_calls(transit: OpenBao,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = transit.config()
    ks, blobs = _three_key_keyset("orders", "transit://transit/fields", config)
    ks.save("vault://secret/vaultkit/fields/orders", create=True)

    calls: list[str] = []
    real_write = TransitKeyProvider.decrypt_data_key

    def counting(self: TransitKeyProvider, wrapped: bytes, *, context: Any = None) -> Any:
        calls.append(self.uri)
        return real_write(self, wrapped, context=context)

    monkeypatch.setattr(TransitKeyProvider, "decrypt_data_key", counting)
    forget_unwrapped_keys()
    loaded = Keyset.load("vault://secret/vaultkit/fields/orders", config=config)
    _exercise(loaded, blobs)
    assert calls == ["transit://transit/fields"] * 3

    # KV v2 check-and-set: a stale copy cannot overwrite a newer rotation.
    stale = Keyset.load("vault://secret/vaultkit/fields/orders", config=config)
    loaded.rotate()
    loaded.save()
    stale.rotate()
    with pytest.raises(KeysetConflictError, match="changed since it was read"):
        stale.save()
    with pytest.raises(KeysetConflictError):
        Keyset.create("orders", kek="transit://transit/fields", config=config).save(
            "vault://secret/vaultkit/fields/orders", create=True)
    fresh = Keyset.load("vault://secret/vaultkit/fields/orders", config=config)
    assert fresh.primary_id == loaded.primary_id
