"""``vaultkit keys`` and ``vaultkit doctor`` on embedded defaults (no servers)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from vaultkit.cli import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VAULTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VAULTKIT_LOCAL_KEYS_STORE", "file")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_version_and_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and "vaultkit, version" in result.output
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("doctor", "keys"):
        assert name in result.output


def test_init_local_then_check(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["keys", "init-local"])
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "home" / "keys" / "default.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_b64 = key_file.read_text().strip()

    result = runner.invoke(cli, ["keys", "check", "local://default", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["context_bound"] is True
    assert report["provider"] == "local" and report["store"] == str(key_file)
    assert key_b64 not in result.output

    result = runner.invoke(cli, ["keys", "check", "local://default"])
    assert result.exit_code == 0 and result.output.startswith("OK local://default")


def test_init_local_refuses_to_overwrite(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["keys", "init-local", "k"]).exit_code == 0
    result = runner.invoke(cli, ["keys", "init-local", "k"])
    assert result.exit_code == 3
    assert "refusing to overwrite" in result.output


def test_check_exit_codes(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["keys", "check", "bogus://x"])
    assert result.exit_code == 3 and "unknown key provider scheme" in result.output
    result = runner.invoke(cli, ["keys", "check", "local://missing"])
    assert result.exit_code == 4 and "init-local missing" in result.output
    runner.invoke(cli, ["keys", "init-local", "loose"])
    os.chmod(tmp_path / "home" / "keys" / "loose.key", 0o644)
    result = runner.invoke(cli, ["keys", "check", "local://loose"])
    assert result.exit_code == 5 and "chmod 600" in result.output


def test_doctor_on_embedded_defaults(runner: CliRunner) -> None:
    runner.invoke(cli, ["keys", "init-local"])
    result = runner.invoke(cli, ["doctor", "--json", "--key", "memory://doctor"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["vault"] == {"configured": False, "hint": "set VAULT_ADDR or [vault] addr"}
    assert [k["uri"] for k in report["keys"]] == ["local://default", "memory://doctor"]
    assert all(k["ok"] for k in report["keys"])


def test_doctor_strict_fails_on_unreachable_vault(runner: CliRunner,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.servers import free_port

    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(cli, ["doctor", "--json", "--strict"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["vault"]["reachable"] is False
    assert report["vault"]["error"] == "unavailable"
