"""Key providers: the key-encryption keys (KEKs) behind field encryption, encrypted files and archives.

A :class:`KeyProvider` generates data keys and unwraps them, always bound to an
*encryption context* (a ``str -> str`` mapping that must match on unwrap, like
AWS KMS's EncryptionContext). Pick one by URI, never by guessing:

=============================  ===========================================================
``awskms://<id, ARN, alias>``  AWS KMS (``GenerateDataKey``/``Decrypt`` with EncryptionContext)
``transit://<mount>/<key>``    Vault/OpenBao transit (``encrypt``/``decrypt``, context as AAD)
``local://<name>``             a 256-bit master key in the OS keyring or a 0600 key file
``memory://<name>``            a process-local key, for tests and demos
=============================  ===========================================================

>>> kp = get_key_provider("memory://demo")
>>> dk = kp.generate_data_key(context={"purpose": "doc"})
>>> kp.decrypt_data_key(dk.wrapped, context={"purpose": "doc"}) == dk.plaintext
True
"""

from __future__ import annotations

from .base import DataKey, KeyProvider, canonical_context
from .registry import get_key_provider, parse_key_uri

__all__ = ["DataKey", "KeyProvider", "canonical_context", "get_key_provider", "parse_key_uri"]
