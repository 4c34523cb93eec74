"""Known-answer tests: C2SP XAES-256-GCM vectors and the committed vk1 vectors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from vaultkit.errors import DecryptionError
from vaultkit.fields.cipher import _decrypt_with_key, _encrypt_from_parts
from vaultkit.fields.format import armor, dearmor, encode_context, header, key_id_of
from vaultkit.fields.xaes import XAES256GCM

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
C2SP = json.loads((VECTORS / "xaes_c2sp.json").read_text())
VK1 = json.loads((VECTORS / "fields_vk1.json").read_text(encoding="utf-8"))["vectors"]


@pytest.mark.parametrize("v", C2SP["vectors"], ids=lambda v: v["key"][:4])
def test_c2sp_xaes_vectors(v: dict[str, Any]) -> None:
    x = XAES256GCM(bytes.fromhex(v["key"]))
    nonce = v["nonce_ascii"].encode()
    aad = v["aad_ascii"].encode() or None
    ct = x.encrypt(nonce, v["plaintext_ascii"].encode(), aad)
    assert ct.hex() == v["ciphertext"]
    assert x.decrypt(nonce, ct, aad) == v["plaintext_ascii"].encode()


@pytest.mark.parametrize("acc", C2SP["accumulated"], ids=lambda a: str(a["iterations"]))
def test_c2sp_xaes_accumulated(acc: dict[str, Any]) -> None:
    # C2SP's accumulated vector: inputs read from a SHAKE-128 stream of the empty string,
    # every ciphertext absorbed into a second SHAKE-128.
    n = acc["iterations"]
    stream = hashlib.shake_128(b"").digest(n * (32 + 24 + 2 + 510))
    pos = 0

    def read(k: int) -> bytes:
        nonlocal pos
        pos += k
        return stream[pos - k:pos]

    out = hashlib.shake_128()
    for _ in range(n):
        key, nonce = read(32), read(24)
        plaintext = read(read(1)[0])
        aad = read(read(1)[0])
        x = XAES256GCM(key)
        ct = x.encrypt(nonce, plaintext, aad)
        assert x.decrypt(nonce, ct, aad) == plaintext
        out.update(ct)
    assert out.hexdigest(32) == acc["sha"]


@pytest.mark.parametrize("v", VK1, ids=lambda v: v["name"])
def test_vk1_vector_encrypts(v: dict[str, Any]) -> None:
    blob = _encrypt_from_parts(v["suite_id"], v["key_id"], bytes.fromhex(v["key"]),
                               bytes.fromhex(v["nonce"]), bytes.fromhex(v["plaintext"]),
                               v["context"])
    assert blob.hex() == v["blob"]
    assert armor(blob) == v["armored"]
    assert encode_context(v["context"]).hex() == v["context_encoding"]


@pytest.mark.parametrize("v", VK1, ids=lambda v: v["name"])
def test_vk1_vector_decrypts(v: dict[str, Any]) -> None:
    blob = bytes.fromhex(v["blob"])
    key = bytes.fromhex(v["key"])
    assert _decrypt_with_key(key, blob, v["context"]).hex() == v["plaintext"]
    assert dearmor(v["armored"]) == blob
    assert key_id_of(blob) == v["key_id"] == key_id_of(v["armored"])
    with pytest.raises(DecryptionError):
        _decrypt_with_key(key, blob, {**v["context"], "extra": "x"})


@pytest.mark.parametrize("v", [v for v in VK1 if v["suite_id"] == 1], ids=lambda v: v["name"])
def test_vk1_layout_matches_the_spec_independently(v: dict[str, Any]) -> None:
    # Rebuild the blob from FORMAT.md's definition with the bare XAES primitive:
    # header || nonce || XAES(key, nonce, plaintext, AAD = header || canonical(context)).
    hdr = bytes([v["suite_id"]]) + v["key_id"].to_bytes(4, "big")
    assert hdr == header(v["suite_id"], v["key_id"])
    nonce = bytes.fromhex(v["nonce"])
    aad = hdr + bytes.fromhex(v["context_encoding"])
    body = XAES256GCM(bytes.fromhex(v["key"])).encrypt(nonce, bytes.fromhex(v["plaintext"]), aad)
    blob = hdr + nonce + body
    assert blob.hex() == v["blob"]
    assert len(blob) - len(bytes.fromhex(v["plaintext"])) == 45


def test_context_encoding_is_the_documented_one() -> None:
    assert encode_context({}) == b""
    assert encode_context({"b": "2", "a": ""}) == b"a\x00\x00b\x002"
