"""Errors carry nothing: every failure path of field encryption raises an error with no
``__cause__``/``__context__`` and no plaintext or key bytes in its text, args or attributes.

Each case plants canaries (the plaintext, the key) and walks the whole chain, as an error
reporter such as Sentry would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from harness.canary import LeakCanary
from vaultkit.errors import ConfigError, DecryptionError, KeyProviderError, VaultkitError
from vaultkit.fields import FieldCipher, FieldContext, Keyset, armor
from vaultkit.fields.cipher import _decrypt_with_key
from vaultkit.fields.keyset import forget_unwrapped_keys
from vaultkit.fields.migrate import FernetReader, SqlalchemyUtilsReader
from vaultkit.secret import Secret

CTX = {"table": "users", "column": "email", "row": "r1"}


def assert_clean(exc: BaseException, leak_canary: LeakCanary) -> None:
    """No chain at all, and the canaries appear nowhere in the error."""
    assert isinstance(exc, VaultkitError), type(exc)
    assert exc.__cause__ is None, f"{type(exc).__name__} has a __cause__"
    assert exc.__context__ is None, f"{type(exc).__name__} has a __context__"
    leak_canary.watch_exception(exc)
    for value in (*exc.args, *vars(exc).values()):
        leak_canary.watch_text(repr(value), f"attribute of {type(exc).__name__}")


def raised(fn: Callable[[], Any]) -> BaseException:
    with pytest.raises(VaultkitError) as info:
        fn()
    return info.value


@pytest.fixture
def ks() -> Keyset:
    return Keyset.create("errors", kek=f"memory://errors-{os.urandom(4).hex()}")


def test_non_utf8_plaintext_under_as_str(ks: Keyset, leak_canary: LeakCanary) -> None:
    # The case: an authentic value that is not UTF-8. The UnicodeDecodeError's
    # .object is the whole plaintext; it must not be reachable from the DecryptionError.
    plain = leak_canary.new_bytes() + b"\xff\xfe"
    cipher = FieldCipher(ks)
    blob = cipher.encrypt(plain, context=CTX)
    text = cipher.encrypt(plain, context=CTX, armored=True)
    for fn in (lambda: cipher.decrypt(blob, context=CTX, as_str=True),
               lambda: cipher.decrypt(text, context=CTX, as_str=True),
               lambda: FieldCipher(ks).decrypt(blob, context=FieldContext(CTX), as_str=True),
               lambda: cipher.decrypt_many([blob, blob], context=CTX, as_str=True),
               lambda: FieldCipher(ks).decrypt_many([text], context=[CTX], as_str=True)):
        exc = raised(fn)
        assert isinstance(exc, DecryptionError)
        assert_clean(exc, leak_canary)


def test_every_decrypt_failure_is_unchained(ks: Keyset, leak_canary: LeakCanary) -> None:
    plain = leak_canary.new_bytes()
    cipher = FieldCipher(ks)
    blob = cipher.encrypt(plain, context=CTX)
    good = cipher.encrypt(b"fine", context=CTX)
    tampered = bytes([*blob[:-1], blob[-1] ^ 1])
    other_suite = bytes([0x02, *blob[1:]])
    unknown = bytes([0x7F, *blob[1:]])
    bad_inputs: list[Any] = [
        tampered, blob[:10], b"", other_suite, unknown, armor(tampered), "vk1.***",
        "vk1." + armor(blob)[4:] + "=", "not-vk1", 12345, None, bytearray(tampered),
        memoryview(tampered),
    ]
    for bad in bad_inputs:
        for fn in (lambda b=bad: cipher.decrypt(b, context=CTX),
                   lambda b=bad: FieldCipher(ks).decrypt(b, context=CTX),  # cold cache
                   lambda b=bad: cipher.decrypt_many([good, b], context=CTX),
                   lambda b=bad: cipher.decrypt_many([b], context=[CTX])):
            exc = raised(fn)
            assert isinstance(exc, DecryptionError)
            assert_clean(exc, leak_canary)
    for ctx in ({**CTX, "row": "r2"}, {}, FieldContext(CTX, tenant="x")):
        assert_clean(raised(lambda c=ctx: cipher.decrypt(blob, context=c)), leak_canary)
        assert_clean(raised(lambda c=ctx: cipher.decrypt_many([good, blob], context=c)),
                     leak_canary)
    old = ks.primary_id
    ks.rotate()
    ks.retire(old)
    assert_clean(raised(lambda: cipher.decrypt(blob, context=CTX)), leak_canary)
    assert_clean(raised(lambda: _decrypt_with_key(os.urandom(32), blob, CTX)), leak_canary)


def test_context_and_value_errors_are_unchained(ks: Keyset, leak_canary: LeakCanary) -> None:
    secret = leak_canary.new()
    cipher = FieldCipher(ks)
    bad_contexts: list[Any] = [
        {"table": "t", "row": 5}, {"table": "t", "row": "a\0b"}, {"table": "t", "row": "\ud800"},
        {5: "x"}, ["table"], "table", {"table": "t", "column": "c", "row": 7},
        {"column": "c", "row": "r", "table": None},
    ]
    for ctx in bad_contexts:
        for fn in (lambda c=ctx: cipher.encrypt(secret, context=c),
                   lambda c=ctx: cipher.decrypt(b"x" * 60, context=c),
                   lambda c=ctx: cipher.encrypt_many([secret], context=[c])):
            exc = raised(fn)
            assert isinstance(exc, ConfigError)
            assert_clean(exc, leak_canary)
    assert_clean(raised(lambda: FieldContext(table=secret, row=5)), leak_canary)  # type: ignore[arg-type]
    assert_clean(raised(lambda: cipher.encrypt(12345, context=CTX)), leak_canary)  # type: ignore[call-overload]


class _ChainingProvider:
    """A KEK whose unwrap fails with a library exception chained (as botocore's would)."""

    def __init__(self, inner: Any, canary: str) -> None:
        self.inner, self.canary, self.uri = inner, canary, "memory://chaining"

    def generate_data_key(self, *, context: Any = None) -> Any:
        return self.inner.generate_data_key(context=context)

    def encrypt_data_key(self, plaintext: bytes, *, context: Any = None) -> bytes:
        return bytes(self.inner.encrypt_data_key(plaintext, context=context))

    def decrypt_data_key(self, wrapped: bytes, *, context: Any = None) -> Secret[bytes]:
        try:
            raise ValueError(f"SDK detail {self.canary}")
        except ValueError as exc:
            raise KeyProviderError("unwrap failed", source="memory") from exc


def test_key_provider_failure_is_reported_without_its_chain(leak_canary: LeakCanary) -> None:
    from vaultkit.keys import get_key_provider

    canary = leak_canary.new()
    inner = get_key_provider(f"memory://chain-{os.urandom(4).hex()}")
    writer = Keyset.create("chain", kek="memory://x", provider=_ChainingProvider(inner, canary))
    blob = FieldCipher(writer).encrypt(b"v", context=CTX)
    forget_unwrapped_keys()  # a fresh process: the key must be unwrapped, which fails
    reader = Keyset.from_json(writer.to_json(), provider=_ChainingProvider(inner, canary))
    for fn in (lambda: FieldCipher(reader).decrypt(blob, context=CTX),
               lambda: FieldCipher(reader).decrypt_many([blob], context=CTX),
               lambda: reader.data_key(reader.primary_id)):
        exc = raised(fn)
        assert isinstance(exc, KeyProviderError) and exc.message == "unwrap failed"
        assert_clean(exc, leak_canary)


def test_keyset_document_errors_are_unchained(ks: Keyset, leak_canary: LeakCanary) -> None:
    canary = leak_canary.new()
    assert_clean(raised(lambda: Keyset.from_json('{"format": "' + canary)), leak_canary)
    doc = json.loads(ks.to_json())
    doc["keys"][0]["wrapped"] = canary + "!!"
    forget_unwrapped_keys()
    broken = Keyset.from_json(json.dumps(doc))
    assert_clean(raised(lambda: broken.data_key(broken.primary_id)), leak_canary)
    doc["keys"][0]["id"] = "zzzzzzzz"
    assert_clean(raised(lambda: Keyset.from_json(json.dumps(doc))), leak_canary)
    doc["keys"][0]["suite"] = canary
    assert_clean(raised(lambda: Keyset.from_json(json.dumps(doc))), leak_canary)


def test_legacy_readers_are_unchained(leak_canary: LeakCanary) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    leak_canary.add(key.decode())
    token = Fernet(key).encrypt(leak_canary.new_bytes())
    reader = FernetReader([key])
    assert_clean(raised(lambda: reader(token[:-4] + b"AAAA")), leak_canary)
    assert_clean(raised(lambda: FernetReader([key[:-3]])), leak_canary)
    for engine in ("aes-gcm", "aes"):
        su = SqlalchemyUtilsReader("passphrase", engine=engine, padding="pkcs5")
        for bad in ("***", "QUJD", "QUJDREVGR0hJSktMTU5PUA==" * 3):
            assert_clean(raised(lambda b=bad, r=su: r(b)), leak_canary)


def test_sqlalchemy_types_do_not_chain_decoding_errors(ks: Keyset,
                                                       leak_canary: LeakCanary) -> None:
    from vaultkit.fields.sqlalchemy import EncryptedJSON, EncryptedString, Sealed, row_context

    cipher = FieldCipher(ks)
    ctx = row_context("users", "email", "a1")
    not_utf8 = cipher.encrypt(leak_canary.new_bytes() + b"\xff", context=ctx)
    not_json = cipher.encrypt(b'{"k": "' + leak_canary.new_bytes(), context=ctx)
    for typ, blob in ((EncryptedString(cipher), not_utf8), (EncryptedJSON(cipher), not_json),
                      (EncryptedJSON(cipher), not_utf8)):
        exc = raised(lambda t=typ, b=blob: t.open(Sealed(b), ctx))
        assert isinstance(exc, DecryptionError)
        assert_clean(exc, leak_canary)
    exc = raised(lambda: EncryptedJSON(cipher).to_plain({leak_canary.new(): object()}))
    assert isinstance(exc, ConfigError)
    assert_clean(exc, leak_canary)
