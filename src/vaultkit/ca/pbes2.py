"""Encrypted private keys: PKCS#8 ``EncryptedPrivateKeyInfo`` with PBES2, written and read here.

Why this format and not ``BestAvailableEncryption``: cryptography's PEM PKCS#8
encryption uses PBKDF2 with only 2,048 rounds, and in cryptography 50
``PrivateFormat.PKCS8.encryption_builder()`` raises ("only supported with
OpenSSH and PKCS12"). PKCS#12 *does* take ``kdf_rounds(600_000)`` for the key
bag, but its integrity MAC is keyed from the passphrase with only 2,048
PKCS#12-KDF rounds, which hands an attacker a cheap password oracle. So a key
is written as a standard RFC 5958 ``EncryptedPrivateKeyInfo`` with RFC 8018
PBES2 parameters (the structure ``openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf
hmacWithSHA256 -iter 600000`` writes, and ``openssl pkey`` reads back):

* KDF: PBKDF2-HMAC-SHA256, 600,000 iterations by default (OWASP 2023; step-ca's
  default), a 16-byte random salt per file;
* cipher: AES-256-CBC with a 16-byte random IV per file, PKCS#7 padding.

Only the ASN.1 *wrapping* (five fixed DER nodes) is assembled and taken apart
here; the KDF, the cipher, the padding and the PKCS#8 inside are
``cryptography``'s. A file that is not exactly this structure (another PRF or
cipher, an OpenSSL ``-v1`` key) goes to ``cryptography``'s own parser instead.

CBC without a MAC cannot tell a wrong passphrase from a modified file: both give
one message (:data:`FAILED`), and callers compare the key with its certificate.

The KDF can run in a background thread (:func:`start_unlock`): ``cryptography``'s
PBKDF2 releases the GIL, so ``vaultkit ca`` derives the intermediate's key while it
loads the rest of the CA. The work is unchanged; only the waiting overlaps.

>>> from vaultkit.ca.keys import generate_private_key
>>> pem = encrypt_private_key(generate_private_key("ec-p256"), Secret(b"correct horse"),
...                           kdf_rounds=1000)
>>> parse_pbes2(pem).rounds
1000
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import CAKeyError, ConfigError
from ..secret import Secret

if TYPE_CHECKING:
    from .keys import PrivateKey

#: The product default and the floor for CA keys (issue 5: "at least 600,000 PBKDF2-SHA256").
DEFAULT_KDF_ROUNDS = 600_000
#: A tampered file must not make us spin for hours; real files use 600,000.
MAX_ROUNDS = 100_000_000
FAILED = "cannot decrypt the key: wrong passphrase, or the file was modified or damaged"
_SALT_BYTES = 16
_IV_BYTES = 16
_PEM_LABEL = "ENCRYPTED PRIVATE KEY"

# Full DER TLVs (tag, length, value) of the OBJECT IDENTIFIERs in the structure.
OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_SEQ, _OCTETS, _INT, _NULL, _OID = 0x30, 0x04, 0x02, 0x05, 0x06
_DER_NULL = bytes([_NULL, 0])


# --- DER: writing -------------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*parts: bytes) -> bytes:
    return _der(_SEQ, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _der(_OCTETS, data)


def _integer(value: int) -> bytes:
    return _der(_INT, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # leading 0: positive


def _pem(der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i:i + 64] + b"\n" for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {_PEM_LABEL}-----\n".encode(), *lines,
                     f"-----END {_PEM_LABEL}-----\n".encode()])


# --- DER: reading -------------------------------------------------------------------------


class _Node(NamedTuple):
    tag: int
    raw: bytes  # the whole TLV
    value: bytes


def _nodes(data: bytes) -> list[_Node]:
    """The DER TLVs that make up ``data`` (one level; definite lengths only)."""
    out: list[_Node] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("truncated")
        tag, length = data[pos], data[pos + 1]
        head = 2
        if length & 0x80:
            n = length & 0x7F
            if not 1 <= n <= 4 or pos + 2 + n > len(data):
                raise ValueError("bad length")
            length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
            head += n
        end = pos + head + length
        if end > len(data):
            raise ValueError("truncated")
        out.append(_Node(tag, data[pos:end], data[pos + head:end]))
        pos = end
    return out


def _only(data: bytes, *tags: int) -> list[_Node]:
    nodes = _nodes(data)
    if [n.tag for n in nodes] != list(tags):
        raise ValueError("unexpected structure")
    return nodes


class PBES2Params(NamedTuple):
    """What the KDF and the cipher need, read from an ``ENCRYPTED PRIVATE KEY``."""

    salt: bytes
    rounds: int
    iv: bytes
    ciphertext: bytes


# --- the format ---------------------------------------------------------------------------


def _kek(passphrase: Secret[bytes], salt: bytes, rounds: int) -> bytes:
    return PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(passphrase.reveal())


def encrypt_private_key(key: PrivateKey, passphrase: Secret[bytes], *,
                        kdf_rounds: int = DEFAULT_KDF_ROUNDS) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` (PKCS#8 + PBES2/PBKDF2-SHA256/AES-256-CBC).

    ``kdf_rounds`` below the default exists for tests that are not about the KDF;
    the CLI and :class:`~vaultkit.ca.authority.CertificateAuthority` never lower it.
    """
    from cryptography.hazmat.primitives import padding, serialization
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if kdf_rounds < 1000:
        raise ConfigError("kdf_rounds must be at least 1000")
    if not passphrase.reveal():
        raise ConfigError("an empty passphrase cannot protect a key")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(_SALT_BYTES), os.urandom(_IV_BYTES)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(_kek(passphrase, salt, kdf_rounds)), modes.CBC(iv)
                       ).encryptor()
    ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    # RFC 8018 A.2 / A.4 and RFC 5958 section 3.
    pbkdf2_params = _seq(_octets(salt), _integer(kdf_rounds), _seq(OID_HMAC_SHA256, _DER_NULL))
    pbes2_params = _seq(_seq(OID_PBKDF2, pbkdf2_params), _seq(OID_AES256_CBC, _octets(iv)))
    return _pem(_seq(_seq(OID_PBES2, pbes2_params), _octets(ciphertext)))


def parse_pbes2(pem: bytes) -> PBES2Params | None:
    """RFC 5958 ``EncryptedPrivateKeyInfo`` with PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC, or None.

    ``None`` means "not exactly that structure": the caller uses cryptography's parser.
    """
    lines = pem.strip().splitlines()
    label = _PEM_LABEL.encode()
    if len(lines) < 3 or label not in lines[0] or label not in lines[-1]:
        return None
    try:
        der = base64.b64decode(b"".join(lines[1:-1]), validate=True)
        (info,) = _only(der, _SEQ)
        alg, ciphertext = _only(info.value, _SEQ, _OCTETS)
        oid, params = _only(alg.value, _OID, _SEQ)
        kdf, enc = _only(params.value, _SEQ, _SEQ)
        kdf_oid, kdf_params = _only(kdf.value, _OID, _SEQ)
        enc_oid, iv = _only(enc.value, _OID, _OCTETS)
        fields = _nodes(kdf_params.value)
    except (ValueError, TypeError):
        return None
    if (oid.raw, kdf_oid.raw, enc_oid.raw) != (OID_PBES2, OID_PBKDF2, OID_AES256_CBC):
        return None
    # PBKDF2-params (RFC 8018 A.2): salt, iterationCount, keyLength OPTIONAL, prf. The prf
    # defaults to hmacWithSHA1 when absent: not ours, so cryptography's parser handles it.
    if len(fields) == 4 and fields[2].tag == _INT and fields[2].value == b"\x20":
        fields = [fields[0], fields[1], fields[3]]
    if [f.tag for f in fields] != [_OCTETS, _INT, _SEQ]:
        return None
    if fields[2].value not in (OID_HMAC_SHA256, OID_HMAC_SHA256 + _DER_NULL):
        return None
    rounds = int.from_bytes(fields[1].value, "big", signed=True)
    if not 1 <= rounds <= MAX_ROUNDS or len(iv.value) != _IV_BYTES:
        return None
    if not ciphertext.value or len(ciphertext.value) % 16:
        return None
    return PBES2Params(fields[0].value, rounds, iv.value, ciphertext.value)


def kdf_rounds_of(pem: bytes) -> int | None:
    """The PBKDF2 iteration count of an encrypted key in this format (None otherwise)."""
    params = parse_pbes2(pem)
    return params.rounds if params else None


def decrypt(params: PBES2Params, kek: bytes, *, reference: str | None = None) -> PrivateKey:
    """AES-256-CBC with ``kek``, then ``cryptography``'s PKCS#8 parser."""
    from cryptography.hazmat.primitives import padding, serialization
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from .keys import checked_private_key

    decryptor = Cipher(algorithms.AES(kek), modes.CBC(params.iv)).decryptor()
    padded = decryptor.update(params.ciphertext) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        key = serialization.load_der_private_key(plain, None)
    except (ValueError, TypeError):
        # Not chained: the parser's text could hint at which check failed.
        raise CAKeyError(FAILED, reference=reference) from None
    return checked_private_key(key, reference)


def decrypt_private_key(pem: bytes, passphrase: Secret[bytes], *,
                        reference: str | None = None) -> PrivateKey:
    """Decrypt an ``ENCRYPTED PRIVATE KEY``: this format here, any other through cryptography."""
    from cryptography.hazmat.primitives import serialization

    from .keys import checked_private_key

    params = parse_pbes2(pem)
    if params is not None:
        return decrypt(params, _kek(passphrase, params.salt, params.rounds), reference=reference)
    try:
        key = serialization.load_pem_private_key(pem, passphrase.reveal())
    except (ValueError, TypeError):
        raise CAKeyError(FAILED, reference=reference) from None
    return checked_private_key(key, reference)


# --- the KDF in the background -------------------------------------------------------------


class PendingKey:
    """A key whose KDF runs in a background thread; :meth:`key` waits for it and decrypts."""

    def __init__(self, path: Path, params: PBES2Params, passphrase: Secret[bytes]) -> None:
        self.path = path
        self._params = params
        self._kek: bytes | None = None
        self._thread = threading.Thread(target=self._derive, args=(passphrase,),
                                        name="vaultkit-ca-unlock", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"PendingKey(path={str(self.path)!r})"

    def _derive(self, passphrase: Secret[bytes]) -> None:
        self._kek = _kek(passphrase, self._params.salt, self._params.rounds)

    def key(self) -> PrivateKey:
        """Wait for the KDF, then decrypt and parse."""
        self._thread.join()
        if self._kek is None:  # the KDF raised in the thread (it does not for bytes input)
            raise CAKeyError(FAILED, reference=str(self.path))
        return decrypt(self._params, self._kek, reference=str(self.path))


def start_unlock(path: str | os.PathLike[str], passphrase: Secret[bytes]) -> PendingKey | None:
    """Start decrypting ``path`` in the background; None if it cannot be done here.

    None (never an error) when the file is missing, readable by others, or not this
    format: the caller's ordinary path then reports the problem in its usual order.
    """
    from ..errors import VaultkitError
    from ..files import read_private

    target = Path(path)
    try:  # the caller applies the same check again and reports it in its usual order
        data = read_private(target)
    except VaultkitError:
        return None
    params = parse_pbes2(data)
    return PendingKey(target, params, passphrase) if params is not None else None


def unlock_with_env_passphrase(key_path: Path) -> PendingKey | None:
    """Start ``key_path``'s KDF with ``VAULTKIT_CA_PASSPHRASE``; None when that is unset.

    Only the environment (automation): a keyring look-up or a prompt keeps its usual
    place, after click has validated the request.
    """
    from ..errors import VaultkitError
    from .passphrase import EnvKeyringPrompt

    try:
        passphrase = EnvKeyringPrompt(use_keyring=False).get("intermediate")
    except VaultkitError:
        return None
    return start_unlock(key_path, passphrase)


__all__ = ["DEFAULT_KDF_ROUNDS", "FAILED", "PBES2Params", "PendingKey", "decrypt",
           "decrypt_private_key", "encrypt_private_key", "kdf_rounds_of", "parse_pbes2",
           "start_unlock", "unlock_with_env_passphrase"]
