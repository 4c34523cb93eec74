"""The PBES2 key format (``vaultkit.ca.pbes2``): its parser, the background unlock, the errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from unit.test_ca_support import CA_PW, ROOT_PW
from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases, keys
from vaultkit.ca.pbes2 import encrypt_private_key, parse_pbes2, start_unlock
from vaultkit.errors import CAKeyError, ConfigError
from vaultkit.secret import Secret

PW = Secret(b"a long enough passphrase")


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "ed25519"])
def test_same_key_as_cryptographys_parser(tmp_path: Path, key_type: str) -> None:
    key = keys.generate_private_key(key_type)
    path = keys.write_private_key(tmp_path / "k.key", key, PW, kdf_rounds=1000)
    params = parse_pbes2(path.read_bytes())
    assert params is not None and params.rounds == 1000 and len(params.iv) == 16
    pending = start_unlock(path, PW)
    assert pending is not None
    fast = pending.key()
    slow = keys.load_private_key(path, PW)
    der = (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
           serialization.NoEncryption())
    assert fast.private_bytes(*der) == slow.private_bytes(*der) == key.private_bytes(*der)


def test_reads_the_product_iteration_count(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"), PW)
    params = parse_pbes2(path.read_bytes())
    assert params is not None and params.rounds == keys.DEFAULT_KDF_ROUNDS


def test_other_formats_fall_back_to_cryptography(tmp_path: Path) -> None:
    key = keys.generate_private_key("ec-p256")
    assert parse_pbes2(keys.private_key_pem(key)) is None  # not encrypted
    assert parse_pbes2(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nnot base64!\n"
                       b"-----END ENCRYPTED PRIVATE KEY-----\n") is None
    good = encrypt_private_key(key, PW, kdf_rounds=1000)
    lines = good.splitlines()
    der = base64.b64decode(b"".join(lines[1:-1]))
    truncated = base64.encodebytes(der[:-20])
    assert parse_pbes2(lines[0] + b"\n" + truncated + lines[-1] + b"\n") is None
    # PBKDF2 with the default PRF (hmacWithSHA1): a different scheme, not read here.
    sha1 = der.replace(bytes.fromhex("06082a864886f70d0209"), bytes.fromhex("06082a864886f70d0207"))
    pem = lines[0] + b"\n" + base64.encodebytes(sha1) + lines[-1] + b"\n"
    assert parse_pbes2(pem) is None
    plain = tmp_path / "plain.key"
    keys.write_private_key(plain, key, None)
    assert start_unlock(plain, PW) is None


def test_wrong_passphrase_and_tampering_give_the_one_message(tmp_path: Path,
                                                             leak_canary) -> None:  # type: ignore[no-untyped-def]
    right, wrong = leak_canary.new(), leak_canary.new()
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"),
                                  Secret(right.encode()), kdf_rounds=1000)
    pending = start_unlock(path, Secret(wrong.encode()))
    assert pending is not None
    leak_canary.watch(pending)
    with pytest.raises(CAKeyError, match="wrong passphrase, or the file was modified") as info:
        pending.key()
    leak_canary.watch_exception(info.value)
    assert info.value.__cause__ is None
    data = path.read_bytes()
    lines = data.splitlines()
    der = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    der[-5] ^= 0x01  # flip a ciphertext bit
    path.write_bytes(lines[0] + b"\n" + base64.encodebytes(bytes(der)) + lines[-1] + b"\n")
    path.chmod(0o600)
    pending = start_unlock(path, Secret(right.encode()))
    assert pending is not None
    with pytest.raises(CAKeyError, match="wrong passphrase, or the file was modified"):
        pending.key()


def test_refuses_what_the_ordinary_path_refuses(tmp_path: Path) -> None:
    path = keys.write_private_key(tmp_path / "k.key", keys.generate_private_key("ec-p256"), PW,
                                  kdf_rounds=1000)
    assert start_unlock(tmp_path / "missing.key", PW) is None
    os.chmod(path, 0o644)
    assert start_unlock(path, PW) is None  # the caller then raises InsecureFileError


def test_authority_uses_the_pending_key_and_never_asks(tmp_path: Path) -> None:
    home = CAHome(tmp_path / "home")
    setup = CertificateAuthority(home, kdf_rounds=1000, passphrases=StaticPassphrases(
        {"root": ROOT_PW, "intermediate": CA_PW}))
    setup.init_root("Unlock Root", root_key_out=tmp_path / "root.key")
    setup.create_intermediate("Unlock Issuing")
    setup.sign_intermediate(tmp_path / "root.key")
    setup.close()
    pending = start_unlock(home.intermediate_key, Secret(CA_PW.encode()))
    assert pending is not None
    # No passphrases at all: issuing works only if the pending key is used.
    ca = CertificateAuthority(home, passphrases=StaticPassphrases({}), pending_keys=[pending])
    issued = ca.issue("svc", sans=["DNS:svc.example.internal"], out_dir=tmp_path / "out")
    assert issued.cert_path.is_file()
    with pytest.raises(ConfigError, match="no intermediate passphrase"):  # consumed once
        ca.issue("svc2", sans=["DNS:svc2.example.internal"], out_dir=tmp_path / "out")
    ca.close()


def test_the_unlock_starts_before_x509_is_imported() -> None:
    """The point of the design: the KDF can start while cryptography.x509 still loads."""
    code = ("import sys, json\nimport vaultkit.cli.ca, vaultkit.ca, vaultkit.ca.pbes2, "
            "vaultkit.ca.home, vaultkit.ca.passphrase\n"
            "print(json.dumps(sorted(m for m in ('cryptography.x509', 'sqlite3', "
            "'vaultkit.ca.authority') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_lazy_package_names_all_resolve() -> None:
    import vaultkit.ca as ca_pkg

    for name in ca_pkg.__all__:
        assert getattr(ca_pkg, name) is not None
    assert set(ca_pkg.__all__) <= set(dir(ca_pkg))
    with pytest.raises(AttributeError):
        ca_pkg.not_a_name  # noqa: B018
