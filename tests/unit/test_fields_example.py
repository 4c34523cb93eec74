"""examples/encrypted_fields.py runs (SQLite in a temp dir) and says what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "encrypted_fields.py"


def test_encrypted_fields_example_runs() -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "found by blind index (5-byte index): Ada@Example.com" in out
    assert "re-encrypted 2 rows" in out and "still readable: ['Ada@Example.com'" in out
    assert "before: ['customer1@example.com', 'customer2@example.com'] ..." in out
    assert "encrypt-column: 5 encrypted, 1 already encrypted, 0 failed" in out
    assert "every value is ciphertext now: True" in out
    assert "found by blind index: customer3@example.com" in out
