"""``vaultkit doctor`` against a real OpenBao and moto: it reports, and shows no secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.servers import Moto, OpenBao
from vaultkit.backends import aws
from vaultkit.cli import cli

pytestmark = pytest.mark.integration


def test_doctor_reports_vault_aws_and_keys(openbao: OpenBao, moto_server: Moto, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, leak_canary) -> None:
    leak_canary.add(openbao.token)
    kms = aws.client("kms", moto_server.config())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    openbao.bao("secrets", "enable", "-path=transit-doctor", "transit", check=False)
    openbao.bao("write", "-f", "transit-doctor/keys/app")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    result = CliRunner().invoke(cli, ["doctor", "--json", "--strict",
                                      "--key", f"awskms://{key_id}",
                                      "--key", "transit://transit-doctor/app"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["vault"]["reachable"] is True
    assert report["vault"]["auth_method"] == "token"
    assert "no auth method is configured" in report["vault"]["auth_reason"]
    assert report["vault"]["identity"]["policies"] == ["root"]
    assert report["vault"]["identity"]["path"].startswith("auth/token/")
    assert report["vault"]["from_environment"] == {"addr": "VAULT_ADDR", "token": "VAULT_TOKEN"}
    assert report["vault"]["sealed"] is False
    assert report["aws"]["account"] == "123456789012"
    assert [k["ok"] for k in report["keys"]] == [True, True]
    print(result.output)


def test_doctor_shows_the_configured_identity_and_why(openbao: OpenBao, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      leak_canary) -> None:
    from vaultkit.backends.vault import VaultClient

    root = VaultClient.from_config(openbao.config())
    openbao.bao("auth", "enable", "-path=approle-doctor", "approle", check=False)
    root.write("auth/approle-doctor/role/svc", {"token_policies": ["default"]})
    role_id = root.read("auth/approle-doctor/role/svc/role-id")["data"]["role_id"]
    secret_id = leak_canary.add(root.write("auth/approle-doctor/role/svc/secret-id")
                                ["data"]["secret_id"])
    leak_canary.add(openbao.token)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAO_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")  # BAO_ADDR wins
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)  # ambient root: not used
    monkeypatch.setenv("VAULT_APPROLE_SECRET_ID", secret_id)
    (tmp_path / "vaultkit.toml").write_text(
        f'[vault]\nrole_id = "{role_id}"\nauth_mount = "approle-doctor"\n')
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "auth_method: approle" in result.output
    assert "role_id is set" in result.output
    assert "auth/approle-doctor/login" in result.output
    assert "'addr': 'BAO_ADDR'" in result.output
    print(result.output)
