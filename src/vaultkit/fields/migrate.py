"""Readers for values written by other libraries, so they can be re-encrypted into vk1.

>>> from cryptography.fernet import Fernet
>>> key = Fernet.generate_key()
>>> FernetReader([key])(Fernet(key).encrypt(b"old"))
b'old'

Pass a reader as ``legacy=`` to :func:`vaultkit.fields.reencrypt.reencrypt_column` (or
``--from`` to ``vaultkit field reencrypt``): values that are not vk1 are read with
it and written back as vk1 under the primary key, bound to their row's context.

Weaknesses of the old formats (why migrating is worth it), ``docs/fields.md`` has more:

* **Fernet**: AES-128-CBC + HMAC-SHA256, sound but 57 B + base64 overhead (120 B for a
  64 B value), no key id (MultiFernet tries every key), no associated data, so a
  token can be copied to another row or column undetected.
* **sqlalchemy-utils AesGcmEngine**: the key is an unsalted SHA-256 of a passphrase,
  no associated data (copy-paste between rows is undetected), no key id or rotation,
  random 96-bit nonces with no usage limit.
* **sqlalchemy-utils AesEngine** (its default): AES-CBC with the IV fixed to the first
  16 key bytes and **no MAC**: equal values encrypt equally (and equal prefixes
  share ciphertext blocks), and anyone can alter ciphertexts undetected. Reading it
  cannot detect tampering either; only a re-encryption into vk1 fixes that.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigError, DecryptionError
from ..secret import Secret

KeyLike = Secret[str] | Secret[bytes] | str | bytes


def _raw(key: KeyLike) -> bytes:
    value: str | bytes = key.reveal() if isinstance(key, Secret) else key
    return value.encode("utf-8") if isinstance(value, str) else value


class FernetReader:
    """Reads Fernet tokens (``cryptography.fernet``) under one or more keys (newest first)."""

    def __init__(self, keys: Sequence[KeyLike], *, ttl: int | None = None) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ConfigError("FernetReader needs at least one key")
        try:
            fernet: MultiFernet | None = MultiFernet([Fernet(_raw(k)) for k in keys])
        except (ValueError, binascii.Error):
            fernet = None  # raised below, outside the handler: the key stays out of the chain
        if fernet is None:
            raise ConfigError("a Fernet key must be 32 url-safe base64-encoded bytes")
        self._fernet = fernet
        self._ttl = ttl

    def __repr__(self) -> str:
        return "FernetReader(<keys>)"

    def __call__(self, token: bytes | str | memoryview) -> bytes:
        from cryptography.fernet import InvalidToken

        data = token.encode("ascii", "replace") if isinstance(token, str) else bytes(token)
        try:
            return self._fernet.decrypt(data, ttl=self._ttl)
        except (InvalidToken, TypeError, ValueError):
            pass
        raise DecryptionError()


class SqlalchemyUtilsReader:
    """Reads sqlalchemy-utils ``StringEncryptedType``/``EncryptedType`` values.

    ``engine`` is ``"aes-gcm"`` (``AesGcmEngine``) or ``"aes"`` (``AesEngine``, with its
    ``padding``: ``naive`` (the default there), ``pkcs5``, ``oneandzeroes``, ``zeroes``).
    The key is what was passed to the type (a passphrase: it is SHA-256 hashed, as there).
    """

    def __init__(self, key: KeyLike, *, engine: str = "aes-gcm", padding: str = "naive"
                 ) -> None:
        if engine not in ("aes-gcm", "aes"):
            raise ConfigError("engine must be 'aes-gcm' or 'aes'")
        if padding not in ("naive", "pkcs5", "oneandzeroes", "zeroes"):
            raise ConfigError("padding must be naive, pkcs5, oneandzeroes or zeroes")
        digest = hashes.Hash(hashes.SHA256())
        digest.update(_raw(key))
        self._key = digest.finalize()
        self.engine = engine
        self.padding = padding

    def __repr__(self) -> str:
        return f"SqlalchemyUtilsReader(engine={self.engine!r})"

    def __call__(self, value: bytes | str | memoryview) -> bytes:
        try:
            raw = base64.b64decode(value if isinstance(value, (str, bytes)) else bytes(value),
                                   validate=True)
            if self.engine == "aes-gcm":
                # Layout: iv(12) || tag(16) || ciphertext, base64.
                if len(raw) < 28:
                    raise DecryptionError()
                iv, tag, body = raw[:12], raw[12:28], raw[28:]
                return AESGCM(self._key).decrypt(iv, body + tag, None)
            # AES-CBC, IV = key[:16] (fixed), unauthenticated: see the module docstring.
            if not raw or len(raw) % 16:
                raise DecryptionError()
            dec = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
            return self._unpad(dec.update(raw) + dec.finalize())
        except Exception:  # noqa: BLE001, S110 - every failure becomes the one DecryptionError
            pass
        raise DecryptionError()  # outside the handler: no chained exception

    def _unpad(self, data: bytes) -> bytes:
        if self.padding == "naive":
            return data.rstrip(b"*")
        if self.padding == "oneandzeroes":
            return data.rstrip(b"\x00").rstrip(b"\x80")
        n = data[-1]
        if not 1 <= n <= 16:
            raise DecryptionError()
        if self.padding == "pkcs5" and data[-n:] != bytes([n]) * n:
            raise DecryptionError()
        return data[:-n]


def reader_for(name: str, key: KeyLike) -> FernetReader | SqlalchemyUtilsReader:
    """The reader called ``name`` (``fernet``, ``sqlalchemy-utils-aesgcm``,
    ``sqlalchemy-utils-aes``, ``sqlalchemy-utils-aes-pkcs5``) for the CLI's ``--from``."""
    if name == "fernet":
        return FernetReader([key])
    if name == "sqlalchemy-utils-aesgcm":
        return SqlalchemyUtilsReader(key, engine="aes-gcm")
    if name == "sqlalchemy-utils-aes":
        return SqlalchemyUtilsReader(key, engine="aes")
    if name == "sqlalchemy-utils-aes-pkcs5":
        return SqlalchemyUtilsReader(key, engine="aes", padding="pkcs5")
    raise ConfigError(f"unknown legacy format {name!r}")


LEGACY_FORMATS = ("fernet", "sqlalchemy-utils-aesgcm", "sqlalchemy-utils-aes",
                  "sqlalchemy-utils-aes-pkcs5")

__all__ = ["FernetReader", "LEGACY_FORMATS", "SqlalchemyUtilsReader", "reader_for"]
