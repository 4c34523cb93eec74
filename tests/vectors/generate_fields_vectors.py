"""Regenerate ``fields_vk1.json`` (the committed vk1 known-answer vectors).

Run only when the format changes on purpose (which also needs a new format
version): ``.venv/bin/python tests/vectors/generate_fields_vectors.py``.
Keys and nonces are derived from fixed labels with SHA-256, so the output is
deterministic and anyone can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vaultkit.fields.cipher import _encrypt_from_parts
from vaultkit.fields.format import SUITES_BY_ID, armor, encode_context


def _bytes(label: str, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


CASES = [
    ("xaes empty plaintext, empty context", 0x01, 0x00000001, b"", {}),
    ("xaes email", 0x01, 0x1A2B3C4D, b"alice@example.com",
     {"table": "users", "column": "email", "row": "3f2c8a0e9b6d4f11"}),
    ("xaes 64 bytes, tenant", 0x01, 0xFFFFFFFF, bytes(range(64)),
     {"tenant": "acme", "table": "t", "column": "c", "row": "1"}),
    ("xaes unicode context and value", 0x01, 0x00C0FFEE, "Grüße, 世界".encode(),
     {"table": "personen", "column": "straße", "row": "ü-7"}),
    ("xaes 1 KiB", 0x01, 0x7FFFFFFF, _bytes("plaintext-1k", 1024),
     {"table": "docs", "column": "body", "row": "42"}),
    ("aes-256-gcm (read-only suite)", 0x02, 0x00000002, b"legacy value",
     {"table": "users", "column": "ssn", "row": "9"}),
    ("aes-128-gcm (read-only suite)", 0x03, 0x00000003, b"legacy value",
     {"table": "users", "column": "ssn", "row": "9"}),
]


def main() -> None:
    vectors = []
    for i, (name, suite_id, key_id, plaintext, context) in enumerate(CASES):
        suite = SUITES_BY_ID[suite_id]
        key = _bytes(f"vk1-key-{i}", suite.key_bytes)
        nonce = _bytes(f"vk1-nonce-{i}", suite.nonce_bytes)
        blob = _encrypt_from_parts(suite_id, key_id, key, nonce, plaintext, context)
        vectors.append({
            "name": name, "suite": suite.name, "suite_id": suite_id, "key_id": key_id,
            "key": key.hex(), "nonce": nonce.hex(), "plaintext": plaintext.hex(),
            "context": context, "context_encoding": encode_context(context).hex(),
            "blob": blob.hex(), "armored": armor(blob),
        })
    doc = {"format": "vk1", "spec": "docs/FORMAT.md", "vectors": vectors}
    path = Path(__file__).with_name("fields_vk1.json")
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
