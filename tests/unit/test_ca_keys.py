"""CA keys at rest: PBES2 PKCS#8 at >= 600,000 PBKDF2-SHA256 rounds, 0600, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from vaultkit.ca import keys
from vaultkit.ca.pbes2 import encrypt_private_key, kdf_rounds_of
from vaultkit.errors import CAKeyError, ConfigError, InsecureFileError
from vaultkit.secret import Secret

PW = Secret(b"a long enough passphrase")


def test_default_is_600k_rounds_and_cryptography_reads_it(tmp_path: Path) -> None:
    key = keys.generate_private_key("ec-p384")
    path = keys.write_private_key(tmp_path / "root.key", key, PW)
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert kdf_rounds_of(data) == keys.DEFAULT_KDF_ROUNDS >= 600_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = serialization.load_pem_private_key(data, PW.reveal())
    assert keys.same_public_key(loaded.public_key(), key.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize("key_type", keys.KEY_TYPES)
def test_every_key_type_round_trips(tmp_path: Path, key_type: str) -> None:
    key = keys.generate_private_key(key_type)
    assert keys.describe_key(key) == key_type
    path = keys.write_private_key(tmp_path / "k.key", key, PW, kdf_rounds=1000)
    loaded = keys.load_private_key(path, PW)
    assert keys.same_public_key(loaded.public_key(), key.public_key())


def test_salt_and_iv_differ_per_file() -> None:
    key = keys.generate_private_key("ec-p256")
    a = encrypt_private_key(key, PW, kdf_rounds=1000)
    b = encrypt_private_key(key, PW, kdf_rounds=1000)
    assert a != b


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path, leak_canary) -> None:  # type: ignore[no-untyped-def]
    right = leak_canary.new()
    wrong = leak_canary.new()
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"),
                                  Secret(right.encode()), kdf_rounds=1000)
    leak_canary.watch_path(tmp_path)
    with pytest.raises(CAKeyError, match="wrong passphrase") as info:
        keys.load_private_key(path, Secret(wrong.encode()))
    leak_canary.watch_exception(info.value)
    assert info.value.__cause__ is None  # the parser's text is not chained in


def test_tampered_file_is_a_clear_error(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"),
                                  PW, kdf_rounds=1000)
    lines = path.read_bytes().splitlines()
    body = bytearray(lines[3])
    body[10] = ord("A") if body[10] != ord("A") else ord("B")  # flip ciphertext bits
    lines[3] = bytes(body)
    path.write_bytes(b"\n".join(lines) + b"\n")
    os.chmod(path, 0o600)
    with pytest.raises(CAKeyError, match="modified or damaged"):
        keys.load_private_key(path, PW)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_group_or_world_readable_key_is_refused(tmp_path: Path, mode: int) -> None:
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"),
                                  PW, kdf_rounds=1000)
    os.chmod(path, mode)
    with pytest.raises(InsecureFileError, match="chmod 600"):
        keys.load_private_key(path, PW)


def test_refuses_overwrite_and_weak_parameters(tmp_path: Path) -> None:
    key = keys.generate_private_key("ec-p256")
    path = keys.write_private_key(tmp_path / "k.key", key, PW, kdf_rounds=1000)
    with pytest.raises(ConfigError, match="overwrite"):
        keys.write_private_key(path, key, PW)
    with pytest.raises(ConfigError):
        encrypt_private_key(key, PW, kdf_rounds=10)
    with pytest.raises(ConfigError):
        encrypt_private_key(key, Secret(b""))
    with pytest.raises(ConfigError, match="unknown key type"):
        keys.generate_private_key("dsa-1024")


def test_encrypted_key_without_passphrase(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"),
                                  PW, kdf_rounds=1000)
    with pytest.raises(CAKeyError, match="no passphrase"):
        keys.load_private_key(path, None)


def test_unencrypted_leaf_key_is_still_0600(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "leaf.key", keys.generate_private_key("ec-p256"),
                                  None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    assert keys.load_private_key(path, None)
