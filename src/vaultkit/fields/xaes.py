"""XAES-256-GCM (https://c2sp.org/XAES-256-GCM), built only from ``cryptography``'s primitives.

XAES-256-GCM takes a 256-bit key and a 192-bit nonce. The first 96 bits of the
nonce select a *derived* AES-256 key; the last 96 bits are the ordinary
AES-256-GCM nonce under that derived key. The derivation is NIST SP 800-108r1
KDF in counter mode with AES-256 CMAC as the PRF, which for these fixed-size
inputs reduces to three AES-256 block encryptions (C2SP section "Algorithm"):

1. ``L = AES-256_K(0^128)``; ``K1 = dbl(L)`` (the CMAC subkey, RFC 4493 section 2.3);
2. ``M1 = 0x00 0x01 'X' 0x00 || N[:12]``, ``M2 = 0x00 0x02 'X' 0x00 || N[:12]``;
3. ``Kx = AES-256_K(M1 xor K1) || AES-256_K(M2 xor K1)``.

Then ``XAES(K, N, P, A) = AES-256-GCM(Kx, N[12:], P, A)``.

The AES block encryptions use ``Cipher(algorithms.AES(key), modes.ECB())``:
ECB here is the raw block cipher applied to single, fixed, non-repeating blocks
(exactly what CMAC does internally), not a mode used to encrypt data.

>>> x = XAES256GCM(bytes([1]) * 32)
>>> x.encrypt(b"ABCDEFGHIJKLMNOPQRSTUVWX", b"XAES-256-GCM", None).hex()
'ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271'
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 24
#: The part of the nonce that selects the derived key.
PREFIX_BYTES = 12
TAG_BYTES = 16

_ZERO_BLOCK = bytes(16)
_RB = 0x87  # the GF(2^128) reduction constant of CMAC (RFC 4493 section 2.3)


def _aes_ecb_encrypt(key: bytes, blocks: bytes) -> bytes:
    # The raw AES permutation on whole blocks; see the module docstring for why ECB is right here.
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    return enc.update(blocks) + enc.finalize()


def cmac_k1(key: bytes) -> bytes:
    """The CMAC subkey ``K1 = dbl(AES_K(0^128))`` (RFC 4493 section 2.3)."""
    if len(key) != KEY_BYTES:
        raise ValueError("XAES-256-GCM needs a 32-byte key")
    lv = int.from_bytes(_aes_ecb_encrypt(key, _ZERO_BLOCK), "big")
    k1 = (lv << 1) & ((1 << 128) - 1)
    if lv >> 127:
        k1 ^= _RB
    return k1.to_bytes(16, "big")


def derive_key(key: bytes, prefix: bytes, k1: bytes | None = None) -> bytes:
    """The derived AES-256 key for the 12-byte nonce prefix ``prefix``."""
    if len(prefix) != PREFIX_BYTES:
        raise ValueError("XAES-256-GCM nonce prefix is 12 bytes")
    k1 = k1 if k1 is not None else cmac_k1(key)
    k1_int = int.from_bytes(k1, "big")
    m1 = int.from_bytes(b"\x00\x01X\x00" + prefix, "big") ^ k1_int
    m2 = int.from_bytes(b"\x00\x02X\x00" + prefix, "big") ^ k1_int
    return _aes_ecb_encrypt(key, m1.to_bytes(16, "big") + m2.to_bytes(16, "big"))


class Deriver:
    """Derives the AES-256 keys of one XAES key, reusing one AES-ECB context.

    ``derive_key`` builds an AES context per call (about 4 µs); this keeps one
    context per data key (behind a lock: a cipher context is not thread-safe) and
    precomputes ``K1`` and the constant first four bytes of ``M1``/``M2``, so a
    derivation costs one 32-byte AES update and two small XORs.
    """

    __slots__ = ("_c1", "_c2", "_enc", "_k1_tail", "_lock")

    def __init__(self, key: bytes) -> None:
        k1 = cmac_k1(key)
        self._c1 = bytes(a ^ b for a, b in zip(b"\x00\x01X\x00", k1[:4], strict=True))
        self._c2 = bytes(a ^ b for a, b in zip(b"\x00\x02X\x00", k1[:4], strict=True))
        self._k1_tail = int.from_bytes(k1[4:], "big")
        self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "Deriver(<key>)"

    def derive(self, prefix: bytes) -> bytes:
        """The derived key for the 12-byte nonce prefix ``prefix`` (same as :func:`derive_key`)."""
        if len(prefix) != PREFIX_BYTES:
            raise ValueError("XAES-256-GCM nonce prefix is 12 bytes")
        tail = (int.from_bytes(prefix, "big") ^ self._k1_tail).to_bytes(12, "big")
        with self._lock:
            # ECB over whole blocks keeps no state between update() calls.
            return self._enc.update(self._c1 + tail + self._c2 + tail)


class XAES256GCM:
    """XAES-256-GCM with the same call shape as ``cryptography``'s ``AESGCM``.

    This class derives a key per call (three AES blocks plus an ``AESGCM``
    construction). :class:`vaultkit.fields.cipher.FieldCipher` instead caches the
    derived key per nonce prefix, which is what makes it as fast as plain GCM.
    """

    __slots__ = ("_k1", "_key")

    def __init__(self, key: bytes) -> None:
        self._k1 = cmac_k1(key)
        self._key = key

    def __repr__(self) -> str:
        return "XAES256GCM(<key>)"

    def derived(self, prefix: bytes) -> AESGCM:
        """The ``AESGCM`` object for nonce prefix ``prefix`` (cache it; it is reusable)."""
        return AESGCM(derive_key(self._key, prefix, self._k1))

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        if len(nonce) != NONCE_BYTES:
            raise ValueError("XAES-256-GCM nonce is 24 bytes")
        return self.derived(nonce[:PREFIX_BYTES]).encrypt(nonce[PREFIX_BYTES:], data,
                                                          associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Raises ``cryptography.exceptions.InvalidTag`` on any authentication failure."""
        if len(nonce) != NONCE_BYTES:
            raise ValueError("XAES-256-GCM nonce is 24 bytes")
        return self.derived(nonce[:PREFIX_BYTES]).decrypt(nonce[PREFIX_BYTES:], data,
                                                          associated_data)


__all__ = ["Deriver", "KEY_BYTES", "NONCE_BYTES", "PREFIX_BYTES", "TAG_BYTES", "XAES256GCM", "cmac_k1",
           "derive_key"]
