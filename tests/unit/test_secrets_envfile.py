"""The sops-style encrypted file: per-value AES-GCM, key-path binding, MAC, stable diffs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from vaultkit.errors import ConfigError, DecryptionError, SecretsLoadError
from vaultkit.keys.memory import MemoryKeyProvider
from vaultkit.secrets import load_secrets
from vaultkit.secrets.envfile import (
    META,
    decrypt_document,
    encrypt_document,
    parse,
    read_document,
    toml_dumps,
    write_document,
)

KEK = MemoryKeyProvider.named("envfile-tests")


def test_round_trip_keeps_types_and_nesting() -> None:
    doc = {"a": "x", "n": 3, "f": 1.5, "b": True, "l": [1, "two"], "db": {"pw": "p", "port": 5}}
    enc = encrypt_document(doc, KEK)
    assert enc[META]["key_provider"] == "memory://envfile-tests"
    assert set(enc) == {"a", "n", "f", "b", "l", "db", META}  # keys stay readable
    assert all(v.startswith("ENC[v1,") for k, v in enc.items() if k not in ("db", META))
    assert decrypt_document(enc) == doc


def test_reencrypting_keeps_unchanged_ciphertexts() -> None:
    enc = encrypt_document({"a": "1", "b": "2"}, KEK)
    again = encrypt_document({"a": "1", "b": "changed"}, KEK, previous=enc)
    assert again["a"] == enc["a"]  # a diff shows only b
    assert again["b"] != enc["b"]
    assert again[META]["wrapped_key"] == enc[META]["wrapped_key"]
    assert decrypt_document(again) == {"a": "1", "b": "changed"}


def test_fresh_nonces_for_equal_values() -> None:
    enc = encrypt_document({"a": "same", "b": "same"}, KEK)
    assert enc["a"] != enc["b"]


@pytest.mark.parametrize("tamper", ["swap", "drop", "add", "flip", "mac", "wrapped"])
def test_tampering_is_one_decryption_error(tamper: str) -> None:
    enc = encrypt_document({"a": "1", "b": "2"}, KEK)
    if tamper == "swap":
        enc["a"], enc["b"] = enc["b"], enc["a"]
    elif tamper == "drop":
        del enc["b"]
    elif tamper == "add":
        enc["c"] = enc["a"]
    elif tamper == "flip":
        enc["a"] = enc["a"][:-3] + ("A" if enc["a"][-3] != "A" else "B") + enc["a"][-2:]
    elif tamper == "mac":
        enc[META]["mac"] = "AAAA"
    else:
        enc[META]["wrapped_key"] = "AAAA"
    with pytest.raises(DecryptionError) as info:
        decrypt_document(enc)
    assert str(info.value) == "decryption failed"


def test_ciphertext_is_bound_to_its_key_path() -> None:
    """Moving a value under another key fails even with a recomputed MAC (AAD = path)."""
    enc = encrypt_document({"a": "1", "b": "2"}, KEK)
    moved = encrypt_document({"x": "1"}, KEK, previous=enc)
    moved["x"] = enc["a"]
    with pytest.raises(DecryptionError):
        decrypt_document(moved)


def test_other_kek_cannot_open() -> None:
    enc = encrypt_document({"a": "1"}, MemoryKeyProvider("one-off"))
    with pytest.raises(DecryptionError):
        decrypt_document(enc, provider=MemoryKeyProvider("one-off"))


def test_refuses_to_encrypt_twice_and_unknown_versions() -> None:
    enc = encrypt_document({"a": "1"}, KEK)
    with pytest.raises(ConfigError):
        encrypt_document(enc, KEK)
    enc[META]["version"] = 9
    with pytest.raises(ConfigError):
        decrypt_document(enc)


def test_toml_files(tmp_path: Path) -> None:
    doc = {"token": "t", "db": {"password": "p", "port": 1}, "flags": [True, 2]}
    path = tmp_path / "s.enc.toml"
    write_document(path, encrypt_document(doc, KEK))
    assert "[vaultkit_envfile]" in path.read_text() and "[db]" in path.read_text()
    assert decrypt_document(read_document(path)) == doc
    assert parse(toml_dumps(doc), "toml", reference="x") == doc


def test_load_secrets_from_file(tmp_path: Path, leak_canary: LeakCanary) -> None:
    pw = leak_canary.new()
    path = tmp_path / "app.enc.json"
    write_document(path, encrypt_document({"db": {"password": pw}, "n": 7}, KEK))
    loaded = load_secrets({"PW": f"file://{path}#db/password", "N": f"file://{path}#n"})
    assert loaded.as_env() == {"PW": pw, "N": "7"}
    assert len(loaded.plan.calls) == 1  # one decryption for both names
    assert pw not in path.read_text()
    leak_canary.watch_path(path)


def test_bad_files_give_clear_errors(tmp_path: Path, leak_canary: LeakCanary) -> None:
    pw = leak_canary.new()
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"pw": pw}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"pw": "' + pw + '", oops}')
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"PLAIN": f"file://{plain}#pw", "BROKEN": f"file://{broken}#pw",
                      "NONE": f"file://{tmp_path}/none.json#pw"})
    f = info.value.failures
    assert f["PLAIN"].category == "invalid" and "not a vaultkit encrypted file" in str(f["PLAIN"])
    assert f["BROKEN"].category == "invalid"
    assert f["NONE"].category == "not_found"
    leak_canary.watch_exception(info.value)


@pytest.mark.parametrize("fmt", ["json", "toml"])
def test_a_parse_error_keeps_no_plaintext_in_its_chain(fmt: str) -> None:
    # secrets edit parses the edited plaintext: a JSONDecodeError/TOMLDecodeError would keep
    # the whole text, and `from None` only hides it from tracebacks (__context__ stays).
    from vaultkit.secrets.envfile import parse

    with pytest.raises(ConfigError) as info:
        parse('{"pw": "hunter2-plaintext" oops' if fmt == "json" else 'pw = "hunter2" oops',
              fmt, reference="edit")
    assert info.value.__cause__ is None and info.value.__context__ is None
