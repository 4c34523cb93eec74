"""The :class:`KeyProvider` protocol and the AES-GCM key wrap shared by local and memory providers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError, KeyProviderError
from ..secret import Secret

#: Data keys are AES-256 keys.
DATA_KEY_BYTES = 32

Context = Mapping[str, str]


def canonical_context(context: Context | None) -> bytes:
    """The canonical byte encoding of an encryption context.

    JSON with sorted keys, no whitespace and UTF-8 (RFC 8785-compatible for
    string-only maps): the same mapping always gives the same bytes, whatever
    the insertion order.

    >>> canonical_context({"b": "2", "a": "1"})
    b'{"a":"1","b":"2"}'
    """
    if not context:
        return b"{}"
    for k, v in context.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ConfigError("encryption context keys and values must be strings")
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class DataKey:
    """A fresh data key: the plaintext (redacted) and the same key wrapped by the KEK."""

    plaintext: Secret[bytes] = field(repr=False)
    wrapped: bytes = field(repr=False)
    provider: str = ""

    def __repr__(self) -> str:
        return f"DataKey(provider={self.provider!r}, wrapped={len(self.wrapped)} bytes)"


@runtime_checkable
class KeyProvider(Protocol):
    """A key-encryption key. Every implementation passes ``tests/contracts/key_provider.py``."""

    #: The URI that selects this provider (``awskms://...``, ``local://...``); never key bytes.
    uri: str

    def generate_data_key(self, *, context: Context | None = None) -> DataKey:
        """Return a new random 256-bit data key and its wrapped form, bound to ``context``."""
        ...

    def encrypt_data_key(self, plaintext: bytes, *, context: Context | None = None) -> bytes:
        """Wrap an existing data key (used when a keyset moves to a new KEK)."""
        ...

    def decrypt_data_key(self, wrapped: bytes, *, context: Context | None = None) -> Secret[bytes]:
        """Unwrap a data key. A wrong context, key or tampered blob raises KeyProviderError."""
        ...

    def describe(self) -> dict[str, Any]:
        """Non-secret facts about the provider, for ``keys check`` and ``doctor``."""
        ...


class GeneratingProvider:
    """Mixin: generate a data key locally with ``os.urandom`` and wrap it with ``encrypt_data_key``."""

    uri: str

    def encrypt_data_key(self, plaintext: bytes, *, context: Context | None = None) -> bytes:
        raise NotImplementedError

    def generate_data_key(self, *, context: Context | None = None) -> DataKey:
        key = os.urandom(DATA_KEY_BYTES)
        return DataKey(Secret(key), self.encrypt_data_key(key, context=context), self.uri)


_WRAP_MAGIC = b"VKW1"
_NONCE_BYTES = 12


class AesGcmWrapper(GeneratingProvider):
    """Wraps data keys under a 256-bit master key with AES-256-GCM.

    Format: ``b"VKW1" || nonce(12) || ciphertext(32) || tag(16)``; AAD is
    ``b"VKW1" || uri || 0x00 || canonical(context)``, so a wrapped key only
    opens under the same provider URI and the same context.

    Nonces are random 96-bit values. A master key wraps one blob per data key
    (thousands over its life, not billions), far below the 2^32 random-nonce
    limit of NIST SP 800-38D section 8.3.
    """

    def __init__(self, uri: str, master_key: bytes) -> None:
        if len(master_key) != DATA_KEY_BYTES:
            raise ConfigError("master key must be 32 bytes", reference=uri)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.uri = uri
        self._aead = AESGCM(master_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def _aad(self, context: Context | None) -> bytes:
        return _WRAP_MAGIC + self.uri.encode() + b"\x00" + canonical_context(context)

    def encrypt_data_key(self, plaintext: bytes, *, context: Context | None = None) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _WRAP_MAGIC + nonce + self._aead.encrypt(nonce, plaintext, self._aad(context))

    def decrypt_data_key(self, wrapped: bytes, *, context: Context | None = None) -> Secret[bytes]:
        from cryptography.exceptions import InvalidTag

        if len(wrapped) < 4 + _NONCE_BYTES + 16 or not wrapped.startswith(_WRAP_MAGIC):
            raise KeyProviderError("wrapped key is malformed", source=self.uri)
        nonce = wrapped[4:4 + _NONCE_BYTES]
        try:
            key = self._aead.decrypt(nonce, wrapped[4 + _NONCE_BYTES:], self._aad(context))
        except InvalidTag as exc:
            raise KeyProviderError(
                "cannot unwrap data key: wrong master key, wrong context or tampered blob",
                source=self.uri,
            ) from exc
        return Secret(key)
