"""``examples/service_boot.py`` runs in the suite (it starts its own OpenBao and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_service_boot_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "service_boot.py")],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert out.count("select 1 -> (1,)") == 3
    assert "leases revoked on shutdown" in out
    assert "child connected: True" in out and "child sees VAULT_TOKEN: False" in out
    assert "vaultkit run exit code: 0" in out
    assert "leases left after both: 0" in out
