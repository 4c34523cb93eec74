"""FieldCipher: round trips, one error for every tampering, nonce prefix handling, no leaks."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultkit.errors import ConfigError, DecryptionError
from vaultkit.fields import FieldCipher, FieldContext, Keyset, armor, key_id_of
from vaultkit.fields import cipher as cipher_mod

CTX = {"table": "users", "column": "email", "row": "7f3a"}


@pytest.fixture
def keyset() -> Keyset:
    return Keyset.create("cipher-tests", kek=f"memory://cipher-tests-{os.urandom(4).hex()}")


@pytest.fixture
def cipher(keyset: Keyset) -> FieldCipher:
    return FieldCipher(keyset)


def _assert_fails(c: FieldCipher, blob: Any, context: Any = CTX) -> None:
    with pytest.raises(DecryptionError) as info:
        c.decrypt(blob, context=context)
    assert str(info.value) == DecryptionError.MESSAGE
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_round_trips_str_bytes_and_armor(cipher: FieldCipher) -> None:
    blob = cipher.encrypt("a@example.com", context=CTX)
    assert isinstance(blob, bytes) and blob[0] == 0x01
    assert len(blob) == len("a@example.com") + 45
    assert cipher.decrypt(blob, context=CTX) == b"a@example.com"
    assert cipher.decrypt(blob, context=CTX, as_str=True) == "a@example.com"
    text = cipher.encrypt(b"\x00\xff", context=CTX, armored=True)
    assert text.startswith("vk1.")
    assert cipher.decrypt(text, context=CTX) == b"\x00\xff"
    assert cipher.decrypt(memoryview(blob), context=CTX) == b"a@example.com"
    assert cipher.decrypt(blob, context=FieldContext(CTX)) == b"a@example.com"


def test_many(cipher: FieldCipher) -> None:
    values = [f"v{i}" for i in range(50)]
    contexts = [{**CTX, "row": str(i)} for i in range(50)]
    blobs = cipher.encrypt_many(values, context=contexts)
    assert len(set(blobs)) == 50
    assert cipher.decrypt_many(blobs, context=contexts, as_str=True) == values
    assert [cipher.decrypt(b, context=c, as_str=True) for b, c in zip(blobs, contexts, strict=True)] == values
    with pytest.raises(DecryptionError):
        cipher.decrypt_many(blobs, context=CTX)  # every row bound to its own context
    same = cipher.encrypt_many([b"x", b"y"], context=CTX, armored=True)
    assert cipher.decrypt_many(same, context=CTX) == [b"x", b"y"]
    with pytest.raises(ConfigError):
        cipher.encrypt_many([b"x"], context=[CTX, CTX])


def test_nonces_differ_and_public_api_takes_no_nonce(cipher: FieldCipher) -> None:
    blobs = {cipher.encrypt(b"same", context=CTX) for _ in range(200)}
    assert len(blobs) == 200
    nonces = {b[5:29] for b in blobs}
    assert len(nonces) == 200
    assert len({b[5:17] for b in blobs}) == 1  # one cached prefix per process
    with pytest.raises(TypeError):
        cipher.encrypt(b"x", context=CTX, nonce=b"0" * 24)  # type: ignore[call-overload]


def test_every_bit_flip_and_truncation_is_rejected(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(b"secret-value", context=CTX)
    for i in range(len(blob)):
        for bit in range(8):
            tampered = bytearray(blob)
            tampered[i] ^= 1 << bit
            _assert_fails(cipher, bytes(tampered))
    for n in range(len(blob)):
        _assert_fails(cipher, blob[:n])
    _assert_fails(cipher, blob + b"\x00")


def test_armored_tampering_is_rejected(cipher: FieldCipher) -> None:
    text = cipher.encrypt(b"secret-value", context=CTX, armored=True)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ."
    for i in range(len(text)):
        for ch in alphabet[:: 7 if i > 4 else 1]:
            if ch != text[i]:
                _assert_fails(cipher, text[:i] + ch + text[i + 1:])
    for n in range(len(text)):
        _assert_fails(cipher, text[:n])
    _assert_fails(cipher, text + "=")
    _assert_fails(cipher, " " + text)


def test_swapped_context_is_rejected(cipher: FieldCipher) -> None:
    blob = cipher.encrypt(b"v", context=CTX)
    _assert_fails(cipher, blob, {**CTX, "row": "7f3b"})      # another row
    _assert_fails(cipher, blob, {**CTX, "column": "phone"})  # another column
    _assert_fails(cipher, blob, {**CTX, "table": "admins"})
    _assert_fails(cipher, blob, {**CTX, "tenant": "x"})       # extra key
    _assert_fails(cipher, blob, {"table": "users", "column": "email"})
    _assert_fails(cipher, blob, {})


def test_wrong_key_id_other_keyset_and_retired_key(keyset: Keyset, cipher: FieldCipher) -> None:
    blob = cipher.encrypt(b"v", context=CTX)
    other = FieldCipher(Keyset.create("other", kek="memory://cipher-tests-other"))
    _assert_fails(other, blob)
    forged = bytearray(blob)
    forged[1:5] = other.keyset.primary_id.to_bytes(4, "big")
    _assert_fails(other, bytes(forged))
    _assert_fails(cipher, bytes(forged))
    old = keyset.primary_id
    keyset.rotate()
    assert cipher.decrypt(blob, context=CTX) == b"v"        # decrypt-only still reads
    new_blob = cipher.encrypt(b"w", context=CTX)
    assert key_id_of(new_blob) == keyset.primary_id != old
    keyset.retire(old)
    _assert_fails(cipher, blob)
    assert cipher.decrypt(new_blob, context=CTX) == b"w"
    keyset.restore(old)
    assert cipher.decrypt(blob, context=CTX) == b"v"


def test_suite_mismatch_is_rejected(cipher: FieldCipher) -> None:
    blob = bytearray(cipher.encrypt(b"v", context=CTX))
    blob[0] = 0x02  # same key id, claims AES-256-GCM
    _assert_fails(cipher, bytes(blob))
    blob[0] = 0x7F
    _assert_fails(cipher, bytes(blob))


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=120), st.text(max_size=120),
                      st.binary(max_size=80).map(lambda b: b"\x01" + b),
                      st.binary(max_size=80).map(armor)))
def test_fuzzed_decoder_only_raises_decryption_error(data: bytes | str) -> None:
    ks = _FUZZ_KEYSET
    try:
        FieldCipher(ks).decrypt(data, context=CTX)
    except DecryptionError as exc:
        assert str(exc) == DecryptionError.MESSAGE
    else:  # pragma: no cover - a forgery
        pytest.fail("random input decrypted")


_FUZZ_KEYSET = Keyset.create("fuzz", kek="memory://fuzz")


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=60))
def test_fuzzed_mutations_of_a_real_blob_fail(data: bytes) -> None:
    c = FieldCipher(_FUZZ_KEYSET)
    blob = c.encrypt(b"payload", context=CTX)
    mutated = bytes(a ^ b for a, b in zip(blob, data.ljust(len(blob), b"\x00"), strict=False))
    if mutated == blob:
        return
    with pytest.raises(DecryptionError):
        c.decrypt(mutated, context=CTX)


def test_prefix_is_redrawn_after_the_message_limit(cipher: FieldCipher,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A budget of 3 tails per prefix, drawn 2 at a time: the bound counts every tail drawn.
    monkeypatch.setattr(cipher_mod, "MESSAGES_PER_PREFIX", 3)
    monkeypatch.setattr(cipher_mod, "TAILS_PER_DRAW", 2)
    cipher._writer = None
    blobs = [cipher.encrypt(bytes([i]), context=CTX) for i in range(7)]
    prefixes = [b[5:17] for b in blobs]
    assert prefixes[0] == prefixes[1] == prefixes[2]
    assert prefixes[3] == prefixes[4] == prefixes[5]
    assert len({prefixes[0], prefixes[3], prefixes[6]}) == 3
    assert [cipher.decrypt(b, context=CTX) for b in blobs] == [bytes([i]) for i in range(7)]
    # A batch larger than one prefix's budget is split across prefixes.
    cipher._writer = None
    blobs = cipher.encrypt_many([b"x"] * 5, context=CTX)
    prefixes = [b[5:17] for b in blobs]
    assert prefixes[0] == prefixes[1] == prefixes[2] != prefixes[3] == prefixes[4]
    assert cipher.decrypt_many(blobs, context=CTX) == [b"x"] * 5
    # The single path continues on the batch's last prefix until its budget is spent.
    assert cipher.encrypt(b"y", context=CTX)[5:17] == prefixes[4]
    assert cipher.encrypt(b"z", context=CTX)[5:17] not in set(prefixes)


def test_threads_never_share_a_nonce(cipher: FieldCipher,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks and budgets so refills and prefix changes race between threads.
    monkeypatch.setattr(cipher_mod, "MESSAGES_PER_PREFIX", 50)
    monkeypatch.setattr(cipher_mod, "TAILS_PER_DRAW", 3)
    cipher._writer = None
    results: list[list[bytes]] = [[] for _ in range(4)]

    def work(out: list[bytes]) -> None:
        for i in range(1500):
            out.append(cipher.encrypt(i.to_bytes(2, "big"), context=CTX))
        out += cipher.encrypt_many([b"m"] * 40, context=CTX)

    threads = [threading.Thread(target=work, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    blobs = [b for r in results for b in r]
    assert len({b[5:29] for b in blobs}) == len(blobs) == 4 * 1540
    per_prefix: dict[bytes, int] = {}
    for b in blobs:
        per_prefix[b[5:17]] = per_prefix.get(b[5:17], 0) + 1
    assert max(per_prefix.values()) <= 50
    expected = [i.to_bytes(2, "big") for i in range(1500)] + [b"m"] * 40
    assert all(cipher.decrypt_many(r, context=CTX) == expected for r in results)


def test_forked_child_draws_a_new_prefix(cipher: FieldCipher) -> None:
    parent_blob = cipher.encrypt(b"p", context=CTX)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            child_blob = cipher.encrypt(b"c", context=CTX)
            os.write(w, child_blob)
        finally:
            os._exit(0)
    os.close(w)
    child_blob = os.read(r, 4096)
    os.close(r)
    os.waitpid(pid, 0)
    assert child_blob[5:17] != parent_blob[5:17]
    assert cipher.decrypt(child_blob, context=CTX) == b"c"
    assert cipher.encrypt(b"q", context=CTX)[5:17] == parent_blob[5:17]


def test_bad_arguments_are_config_errors(cipher: FieldCipher) -> None:
    with pytest.raises(ConfigError):
        cipher.encrypt(b"x", context={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigError):
        cipher.encrypt(b"x", context={"a": "b\x00c"})
    with pytest.raises(ConfigError):
        cipher.encrypt(12, context=CTX)  # type: ignore[call-overload]
    with pytest.raises(ConfigError):
        cipher.encrypt(b"x", context="users")  # type: ignore[call-overload]


def test_plaintexts_never_leak(cipher: FieldCipher, leak_canary: Any) -> None:
    value = leak_canary.new()
    blob = cipher.encrypt(value, context=CTX)
    assert value.encode() not in blob
    leak_canary.watch(cipher, cipher.keyset, blob)
    try:
        cipher.decrypt(blob, context={**CTX, "row": "other"})
    except DecryptionError as exc:
        leak_canary.watch_exception(exc)
    assert cipher.decrypt(blob, context=CTX, as_str=True) == value
    leak_canary.watch_text(repr(cipher._readers), "reader cache")


_CTX_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                    max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_CTX_TEXT, _CTX_TEXT, min_size=2, max_size=5))
def test_dict_context_fast_path_matches_the_generic_encoding(context: dict[str, str]) -> None:
    from vaultkit.fields.format import _encode_items, encode_context

    expected = _encode_items(sorted(context.items()))
    assert encode_context(context) == expected  # may create the key set's plan
    assert encode_context(dict(reversed(list(context.items())))) == expected
    assert encode_context(context) == expected  # through the plan
    assert encode_context(FieldContext(context)) == expected
    bad = dict(context)
    bad[next(iter(bad))] = "x\x00y"
    with pytest.raises(ConfigError):
        encode_context(bad)
    bad[next(iter(bad))] = 5  # type: ignore[assignment]
    with pytest.raises(ConfigError):
        encode_context(bad)
