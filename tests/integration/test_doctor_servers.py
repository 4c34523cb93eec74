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
    assert report["vault"]["sealed"] is False
    assert report["aws"]["account"] == "123456789012"
    assert [k["ok"] for k in report["keys"]] == [True, True]
    print(result.output)
