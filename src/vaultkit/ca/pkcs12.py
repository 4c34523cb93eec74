"""PKCS#12 bundles of a leaf, its key and the intermediate (``issue --p12``, ``export --p12``)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..secret import Secret
from .keys import PrivateKey
from .pbes2 import DEFAULT_KDF_ROUNDS


def pkcs12_bytes(name: str, key: PrivateKey, cert: x509.Certificate,
                 chain: list[x509.Certificate], passphrase: Secret[bytes], *,
                 legacy: bool = False) -> bytes:
    """PKCS#12 with the leaf, its key and the intermediate.

    Default: PBES2/PBKDF2-SHA256/AES-256-CBC at 600,000 rounds with a SHA-256 MAC,
    which OpenSSL 3, curl and Windows read. ``legacy``: 3DES + SHA-1 MAC at 2,048
    rounds, the only format macOS Keychain and iOS import (easy-rsa#957); use it only
    to carry a certificate to such a device, with a strong passphrase.
    """
    from cryptography.hazmat.primitives.serialization import pkcs12

    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        enc = (builder.kdf_rounds(2048)
               .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
               .hmac_hash(hashes.SHA1()).build(passphrase.reveal()))  # noqa: S303 - macOS needs it
    else:
        enc = (builder.kdf_rounds(DEFAULT_KDF_ROUNDS)
               .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
               .hmac_hash(hashes.SHA256()).build(passphrase.reveal()))
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain or None, enc)


__all__ = ["pkcs12_bytes"]
