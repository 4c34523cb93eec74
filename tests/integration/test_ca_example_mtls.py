"""``examples/mtls_service.py`` runs: a live service survives a renewal and a revocation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mtls_service.py"


def test_mtls_service_example() -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    assert lines[0].startswith("hello spiffe://demo.internal/ns/demo/sa/alice, over TLSv1.")
    first = lines[0].rsplit("server certificate ", 1)[1].rstrip(")")
    assert lines[1].startswith("renewed without a restart: server certificate ")
    assert not lines[1].endswith(first)  # a different certificate, same process
    assert lines[2].startswith("bob revoked without a restart: refused")
    assert lines[3].endswith("(still welcome)") and "alice" in lines[3]
