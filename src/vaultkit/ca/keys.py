"""CA key types and private key files (0600; encrypted ones in the format of :mod:`.pbes2`).

>>> generate_private_key("ec-p384").curve.name
'secp384r1'
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .. import files
from ..errors import CAKeyError, ConfigError
from ..secret import Secret
from .pbes2 import DEFAULT_KDF_ROUNDS, decrypt_private_key, encrypt_private_key

#: Private keys the CA issues with or accepts. Ed25519 is offered but OpenSSL-only
#: for verification: cryptography's verifier and several TLS stacks reject it.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-3072", "rsa-4096", "ed25519")


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


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (leaf keys written 0600 without ``--encrypt-key``)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private_key(
    path: str | os.PathLike[str],
    key: PrivateKey,
    passphrase: Secret[bytes] | None,
    *,
    kdf_rounds: int = DEFAULT_KDF_ROUNDS,
    overwrite: bool = False,
    sync_dir: bool = True,
) -> Path:
    """Write ``key`` 0600 and atomically; encrypted when a passphrase is given."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ConfigError("refusing to overwrite an existing key file", reference=str(target))
    data = (encrypt_private_key(key, passphrase, kdf_rounds=kdf_rounds)
            if passphrase is not None else private_key_pem(key))
    return files.write_private(target, data, sync_dir=sync_dir)


def checked_private_key(key: object, reference: str | None = None) -> PrivateKey:
    """``key`` if it is one of the types the CA uses, else a :class:`CAKeyError`."""
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                            ed25519.Ed25519PrivateKey)):
        raise CAKeyError(f"unsupported key type {type(key).__name__}", reference=reference)
    return key


def load_private_key(path: str | os.PathLike[str], passphrase: Secret[bytes] | None) -> PrivateKey:
    """Read a key written by :func:`write_private_key`, refusing group/world-readable files."""
    data = files.read_private(path)
    if b"ENCRYPTED PRIVATE KEY" in data:
        if passphrase is None:
            raise CAKeyError("the key is encrypted and no passphrase was given",
                             reference=str(path))
        return decrypt_private_key(data, passphrase, reference=str(path))
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError) as exc:
        raise CAKeyError("cannot read the key: not a PEM private key", reference=str(path)
                         ) from exc
    return checked_private_key(key, str(path))


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
    "checked_private_key",
    "describe_key",
    "generate_private_key",
    "load_private_key",
    "private_key_pem",
    "same_public_key",
    "write_private_key",
]
