"""CA key generation and private keys at rest (PKCS#8, PBES2, PBKDF2-HMAC-SHA256 600,000 rounds).

Why this format and not ``BestAvailableEncryption``: cryptography's PEM PKCS#8
encryption uses PBKDF2 with only 2,048 rounds, and in cryptography 50
``PrivateFormat.PKCS8.encryption_builder()`` raises ("only supported with
OpenSSH and PKCS12"). PKCS#12 *does* take ``kdf_rounds(600_000)`` for the key
bag, but its integrity MAC is keyed from the passphrase with only 2,048
PKCS#12-KDF rounds, which hands an attacker a cheap password oracle. So the key
is written as a standard RFC 5958 ``EncryptedPrivateKeyInfo`` with RFC 8018
PBES2 parameters (the same structure ``openssl pkcs8 -topk8 -v2 aes-256-cbc
-v2prf hmacWithSHA256 -iter 600000`` writes):

* KDF: PBKDF2-HMAC-SHA256, 600,000 iterations (OWASP 2023; step-ca's default),
  16-byte random salt per file;
* cipher: AES-256-CBC with a 16-byte random IV per file, PKCS#7 padding.

Only the ASN.1 *wrapping* is assembled here (a fixed structure of five DER
nodes); the KDF, cipher and padding are ``cryptography`` primitives, and
*reading* goes through ``cryptography``'s own PKCS#8 parser, so a file this
module writes is accepted only if an independent decoder agrees (the tests also
decrypt it with ``openssl pkey``). CBC without a MAC cannot tell a wrong
passphrase from a modified file; :func:`load_private_key` reports both with one
message, and callers compare the key with its certificate afterwards.

>>> key = generate_private_key("ec-p256")
>>> pem = encrypt_private_key(key, Secret(b"correct horse battery"), kdf_rounds=1000)
>>> pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
True
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from .. import files
from ..errors import CAKeyError, ConfigError
from ..secret import Secret

#: Private keys the CA issues with or accepts. Ed25519 is offered but OpenSSL-only
#: for verification: cryptography's verifier and several TLS stacks reject it.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072", "rsa-4096", "ed25519")

#: The product default and the floor for CA keys (issue 5: "at least 600,000 PBKDF2-SHA256").
DEFAULT_KDF_ROUNDS = 600_000
_SALT_BYTES = 16
_IV_BYTES = 16

# DER-encoded OBJECT IDENTIFIERs (tag 06) used by the PBES2 wrapping.
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_DER_NULL = b"\x05\x00"


def generate_private_key(key_type: str) -> PrivateKey:
    """A new private key of ``key_type`` (one of :data:`KEY_TYPES`).

    >>> generate_private_key("ec-p384").curve.name
    'secp384r1'
    """
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def describe_key(key: PrivateKey | PublicKey) -> str:
    """The :data:`KEY_TYPES` name of a key (public or private)."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(
            key.curve.name, f"ec-{key.curve.name}")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    return "ed25519"


def check_public_key(key: object) -> PublicKey:
    """Accept a requester's public key (``--csr``) only if it is a type and size we issue for.

    Refuses RSA below 2048 bits and curves other than P-256/P-384 (RFC 5480 curves
    every TLS stack accepts).
    """
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ConfigError(f"RSA key of {key.key_size} bits is too small (minimum 2048)")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise ConfigError(f"curve {key.curve.name} is not accepted (use P-256 or P-384)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ConfigError(f"unsupported public key type {type(key).__name__}")


# --- DER helpers for the fixed PBES2 structure ------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _der(0x04, data)


def _integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _der(0x02, raw)


def _pem(der: bytes, label: str) -> bytes:
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(ln + b"\n" for ln in lines),
                     f"-----END {label}-----\n".encode()])


def encrypt_private_key(
    key: PrivateKey, passphrase: Secret[bytes], *, kdf_rounds: int = DEFAULT_KDF_ROUNDS
) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` (PKCS#8 + PBES2/PBKDF2-SHA256/AES-256-CBC).

    ``kdf_rounds`` below the default exists for tests that are not about the KDF;
    the CLI and :class:`~vaultkit.ca.authority.CertificateAuthority` never lower it.
    """
    if kdf_rounds < 1000:
        raise ConfigError("kdf_rounds must be at least 1000")
    secret = passphrase.reveal()
    if not secret:
        raise ConfigError("an empty passphrase cannot protect a key")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt = os.urandom(_SALT_BYTES)
    iv = os.urandom(_IV_BYTES)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, kdf_rounds).derive(secret)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    # RFC 8018 A.2 / A.4 and RFC 5958 section 3.
    pbkdf2_params = _seq(_octets(salt), _integer(kdf_rounds), _seq(_OID_HMAC_SHA256, _DER_NULL))
    pbes2_params = _seq(_seq(_OID_PBKDF2, pbkdf2_params), _seq(_OID_AES256_CBC, _octets(iv)))
    info = _seq(_seq(_OID_PBES2, pbes2_params), _octets(ciphertext))
    return _pem(info, "ENCRYPTED PRIVATE KEY")


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (leaf keys written 0600 without ``--encrypt-key``)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def kdf_rounds_of(pem: bytes) -> int | None:
    """The PBKDF2 iteration count of an encrypted PKCS#8 PEM written here (for checks)."""
    try:
        body = b"".join(pem.strip().splitlines()[1:-1])
        der = base64.b64decode(body)
    except (ValueError, IndexError):
        return None
    marker = der.find(_OID_PBKDF2)
    if marker < 0:
        return None
    # ... PBKDF2 OID, SEQUENCE { OCTET STRING salt, INTEGER rounds, ... }
    pos = marker + len(_OID_PBKDF2)
    pos += 2  # SEQUENCE header (short form: the params are < 128 bytes)
    if der[pos] != 0x04:
        return None
    pos += 2 + der[pos + 1]
    if der[pos] != 0x02:
        return None
    length = der[pos + 1]
    return int.from_bytes(der[pos + 2:pos + 2 + length], "big")


def write_private_key(
    path: str | os.PathLike[str],
    key: PrivateKey,
    passphrase: Secret[bytes] | None,
    *,
    kdf_rounds: int = DEFAULT_KDF_ROUNDS,
    overwrite: bool = False,
) -> Path:
    """Write ``key`` 0600 and atomically; encrypted when a passphrase is given."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ConfigError("refusing to overwrite an existing key file", reference=str(target))
    data = (encrypt_private_key(key, passphrase, kdf_rounds=kdf_rounds)
            if passphrase is not None else private_key_pem(key))
    return files.write_private(target, data)


def load_private_key(path: str | os.PathLike[str], passphrase: Secret[bytes] | None) -> PrivateKey:
    """Read a key written by :func:`write_private_key`, refusing group/world-readable files."""
    data = files.read_private(path)
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and passphrase is None:
        raise CAKeyError("the key is encrypted and no passphrase was given", reference=str(path))
    try:
        key = serialization.load_pem_private_key(
            data, passphrase.reveal() if (encrypted and passphrase is not None) else None)
    except (ValueError, TypeError) as exc:
        # Deliberately not chained with the parser's text: one message for "wrong
        # passphrase" and "modified file" (CBC has no MAC to tell them apart).
        raise CAKeyError(
            "cannot decrypt the key: wrong passphrase, or the file was modified or damaged",
            reference=str(path),
        ) from (None if encrypted else exc)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                            ed25519.Ed25519PrivateKey)):
        raise CAKeyError(f"unsupported key type {type(key).__name__}", reference=str(path))
    return key


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    """Whether two public keys are the same (compares SubjectPublicKeyInfo DER)."""
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


__all__ = [
    "DEFAULT_KDF_ROUNDS",
    "KEY_TYPES",
    "PrivateKey",
    "PublicKey",
    "check_public_key",
    "describe_key",
    "encrypt_private_key",
    "generate_private_key",
    "kdf_rounds_of",
    "load_private_key",
    "private_key_pem",
    "same_public_key",
    "write_private_key",
]
