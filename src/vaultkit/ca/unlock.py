"""Unlock an encrypted CA key in a background thread while the CLI imports the rest.

The 600,000-round PBKDF2 that protects the intermediate key (see :mod:`.keys`) is
most of the work of ``vaultkit ca issue``, and so is importing ``cryptography.x509``.
They do not depend on each other, and ``cryptography``'s PBKDF2 releases the GIL
while ``load_pem_private_key`` does not, so the CLI starts the KDF here, on the
file's own salt and iteration count, before the heavy imports, and collects the
key when it needs to sign. The work is unchanged (the same KDF, the same rounds);
only the waiting overlaps.

Only the exact RFC 8018 PBES2 structure :func:`.keys.encrypt_private_key` writes
(PBKDF2 with hmacWithSHA256, AES-256-CBC) is read here; anything else returns
``None`` and the caller falls back to ``cryptography``'s own PKCS#8 parser. The
decrypted PKCS#8 is parsed by ``cryptography`` too. Failures give the same single
message as :func:`.keys.load_private_key` (CBC has no MAC: a wrong passphrase and
a modified file look alike).

This module imports only what the KDF needs, so starting it is cheap.

>>> pending = start_unlock(path, Secret(b"intermediate passphrase"))  # doctest: +SKIP
>>> key = pending.key()  # joins the thread, decrypts, parses  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import CAKeyError
from ..secret import Secret

if TYPE_CHECKING:
    from .keys import PrivateKey

# Full DER TLVs (tag, length, value) of the OBJECT IDENTIFIERs the structure must carry.
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_SEQ, _OCTETS, _INT, _NULL, _OID = 0x30, 0x04, 0x02, 0x05, 0x06
_PEM_LABEL = b"ENCRYPTED PRIVATE KEY"
#: A tampered file must not make us spin for hours; real files use 600,000.
_MAX_ROUNDS = 100_000_000
_FAILED = "cannot decrypt the key: wrong passphrase, or the file was modified or damaged"


class _Node:
    __slots__ = ("raw", "tag", "value")

    def __init__(self, tag: int, raw: bytes, value: bytes) -> None:
        self.tag = tag
        self.raw = raw  # the whole TLV
        self.value = value


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


def parse_pbes2(pem: bytes) -> PBES2Params | None:
    """RFC 5958 ``EncryptedPrivateKeyInfo`` with PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC, or None.

    ``None`` means "not exactly that structure": the caller uses cryptography's parser.
    """
    lines = pem.strip().splitlines()
    if len(lines) < 3 or _PEM_LABEL not in lines[0] or _PEM_LABEL not in lines[-1]:
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
    if (oid.raw, kdf_oid.raw, enc_oid.raw) != (_OID_PBES2, _OID_PBKDF2, _OID_AES256_CBC):
        return None
    # PBKDF2-params (RFC 8018 A.2): salt, iterationCount, keyLength OPTIONAL, prf. The prf
    # defaults to hmacWithSHA1 when absent: not ours, so cryptography's parser handles it.
    if len(fields) == 4 and fields[2].tag == _INT and fields[2].value == b"\x20":
        fields = [fields[0], fields[1], fields[3]]
    if [f.tag for f in fields] != [_OCTETS, _INT, _SEQ]:
        return None
    prf = fields[2].value
    if prf not in (_OID_HMAC_SHA256, _OID_HMAC_SHA256 + bytes([_NULL, 0])):
        return None
    rounds = int.from_bytes(fields[1].value, "big", signed=True)
    if not 1 <= rounds <= _MAX_ROUNDS or len(iv.value) != 16:
        return None
    if not ciphertext.value or len(ciphertext.value) % 16:
        return None
    return PBES2Params(fields[0].value, rounds, iv.value, ciphertext.value)


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
        kdf = PBKDF2HMAC(hashes.SHA256(), 32, self._params.salt, self._params.rounds)
        self._kek = kdf.derive(passphrase.reveal())

    def key(self) -> PrivateKey:
        """Wait for the KDF, decrypt AES-256-CBC, and parse the PKCS#8 with cryptography."""
        from cryptography.hazmat.primitives import padding, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._thread.join()
        if self._kek is None:  # the KDF raised in the thread (it does not for bytes input)
            raise CAKeyError(_FAILED, reference=str(self.path))
        decryptor = Cipher(algorithms.AES(self._kek), modes.CBC(self._params.iv)).decryptor()
        padded = decryptor.update(self._params.ciphertext) + decryptor.finalize()
        try:
            unpadder = padding.PKCS7(128).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
            key = serialization.load_der_private_key(plain, None)
        except (ValueError, TypeError):
            # Not chained: the parser's text could hint at which check failed.
            raise CAKeyError(_FAILED, reference=str(self.path)) from None
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                                ed25519.Ed25519PrivateKey)):
            raise CAKeyError(f"unsupported key type {type(key).__name__}",
                             reference=str(self.path))
        return key


def start_unlock(path: str | os.PathLike[str], passphrase: Secret[bytes]) -> PendingKey | None:
    """Start decrypting ``path`` in the background; None if it cannot be done here.

    None (never an error) when the file is missing, readable by others, or not the
    structure :func:`parse_pbes2` reads: the caller's ordinary path then reports
    the problem in its usual order, with its usual message.
    """
    from ..errors import VaultkitError
    from ..files import read_private

    target = Path(path)
    try:  # the caller applies the same check again and reports it in its usual order
        data = read_private(target)
    except VaultkitError:
        return None
    params = parse_pbes2(data)
    if params is None:
        return None
    return PendingKey(target, params, passphrase)


def unlock_with_env_passphrase(key_path: Path) -> PendingKey | None:
    """Start ``key_path``'s KDF with ``VAULTKIT_CA_PASSPHRASE``; None when that is unset.

    Only the environment (automation): a keyring look-up or a prompt keeps its usual
    place, after click has validated the request. None also when the key file is not
    one this module reads; the ordinary path then reports it.
    """
    from ..errors import VaultkitError
    from .passphrase import EnvKeyringPrompt

    try:
        passphrase = EnvKeyringPrompt(use_keyring=False).get("intermediate")
    except VaultkitError:
        return None
    return start_unlock(key_path, passphrase)


__all__ = ["PBES2Params", "PendingKey", "parse_pbes2", "start_unlock", "unlock_with_env_passphrase"]
