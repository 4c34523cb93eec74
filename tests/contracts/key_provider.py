"""The contract every KeyProvider passes (jaraco/keyring's BackendBasicTests pattern).

A test class subclasses :class:`KeyProviderContract` and supplies only the
``provider`` fixture (and, where it can, ``other_provider``: a second KEK of
the same kind, whose blobs must not open under the first).
"""

from __future__ import annotations

import os

import pytest

from vaultkit.errors import KeyProviderError, VaultkitError
from vaultkit.keys import DataKey, KeyProvider
from vaultkit.secret import Secret

CTX = {"table": "users", "column": "email"}


class KeyProviderContract:
    @pytest.fixture
    def provider(self) -> KeyProvider:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_is_a_key_provider(self, provider: KeyProvider) -> None:
        assert isinstance(provider, KeyProvider)
        assert "://" in provider.uri

    def test_generate_then_unwrap_round_trip(self, provider: KeyProvider) -> None:
        dk = provider.generate_data_key(context=CTX)
        assert isinstance(dk, DataKey)
        assert isinstance(dk.plaintext, Secret)
        assert len(dk.plaintext.reveal()) == 32
        assert dk.wrapped != dk.plaintext.reveal()
        assert provider.decrypt_data_key(dk.wrapped, context=CTX) == dk.plaintext

    def test_data_keys_are_fresh(self, provider: KeyProvider) -> None:
        a = provider.generate_data_key(context=CTX)
        b = provider.generate_data_key(context=CTX)
        assert a.plaintext != b.plaintext
        assert a.wrapped != b.wrapped

    def test_encrypt_existing_key(self, provider: KeyProvider) -> None:
        key = os.urandom(32)
        wrapped = provider.encrypt_data_key(key, context=CTX)
        assert provider.decrypt_data_key(wrapped, context=CTX).reveal() == key

    def test_context_order_does_not_matter(self, provider: KeyProvider) -> None:
        dk = provider.generate_data_key(context={"a": "1", "b": "2"})
        assert provider.decrypt_data_key(dk.wrapped, context={"b": "2", "a": "1"}) == dk.plaintext

    @pytest.mark.parametrize("other", [{"table": "users", "column": "phone"}, {}, None])
    def test_wrong_context_is_refused(self, provider: KeyProvider, other: dict[str, str] | None
                                      ) -> None:
        dk = provider.generate_data_key(context=CTX)
        with pytest.raises(KeyProviderError):
            provider.decrypt_data_key(dk.wrapped, context=other)

    def test_tampered_blob_is_refused(self, provider: KeyProvider) -> None:
        dk = provider.generate_data_key(context=CTX)
        blob = bytearray(dk.wrapped)
        blob[len(blob) // 2] ^= 0x01
        with pytest.raises(VaultkitError):
            provider.decrypt_data_key(bytes(blob), context=CTX)

    def test_garbage_is_refused(self, provider: KeyProvider) -> None:
        with pytest.raises(VaultkitError):
            provider.decrypt_data_key(b"not a wrapped key", context=CTX)

    def test_other_kek_cannot_unwrap(self, provider: KeyProvider,
                                     other_provider: KeyProvider) -> None:
        dk = provider.generate_data_key(context=CTX)
        with pytest.raises(VaultkitError):
            other_provider.decrypt_data_key(dk.wrapped, context=CTX)

    def test_repr_and_describe_hold_no_key_bytes(self, provider: KeyProvider) -> None:
        dk = provider.generate_data_key(context=CTX)
        key = dk.plaintext.reveal()
        texts = [repr(provider), str(provider), repr(dk), str(dk), str(provider.describe())]
        for text in texts:
            assert key.hex() not in text
            assert repr(key) not in text
