"""``vaultkit config show``: every effective setting with its origin, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from unit.cli_walk import invoke
from vaultkit.settings_schema import SETTINGS

SHOW_SCHEMA = {
    "type": "object",
    "required": ["file", "settings"],
    "properties": {
        "file": {"type": ["string", "null"]},
        "settings": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "value", "origin", "masked"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "value": {}, "origin": {"type": "string"},
                           "masked": {"type": "boolean"}},
        }},
    },
}


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "vaultkit.toml"
    path.write_text('[vault]\naddr = ["http://a:8200", "http://b:8200"]\ntimeout = 3\n'
                    '[secrets]\nDB = "env://DB_URL?default=fallback-value"\n'
                    '[archive]\ns3_require_tls = false\n')
    return path


def test_show_json_values_and_origins(config_file: Path, leak_canary) -> None:
    token = leak_canary.new()
    result = invoke(["config", "show", "--json"],
                    env={"VAULT_TOKEN": token, "VAULTKIT_CA_HOME": "/srv/ca"})
    assert result.exit_code == 0, result.output
    leak_canary.watch_text(result.output, where="config show --json")
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SHOW_SCHEMA)
    rows = {r["name"]: r for r in doc["settings"]}
    f = str(config_file)
    assert doc["file"] == f
    assert rows["vault.addr"] == {"name": "vault.addr", "value": ["http://a:8200",
                                  "http://b:8200"], "origin": f"{f}:2", "masked": False}
    assert rows["vault.timeout"]["value"] == 3.0
    assert rows["vault.timeout"]["origin"] == f"{f}:3"
    assert rows["vault.token"] == {"name": "vault.token", "value": "********",
                                   "origin": "env:VAULT_TOKEN", "masked": True}
    assert rows["ca.home"]["origin"] == "env:VAULTKIT_CA_HOME"
    assert rows["archive.s3_require_tls"]["value"] is False
    assert rows["aws.max_pool_connections"] == {"name": "aws.max_pool_connections",
                                                "value": 32, "origin": "default",
                                                "masked": False}
    # [secrets] entries are references; a default= value in one is masked as elsewhere.
    assert rows["secrets.DB"]["value"] == "env://DB_URL?default=***"
    assert "fallback-value" not in result.output
    assert {s.name for s in SETTINGS} <= set(rows)


def test_show_text_is_origin_then_name_value(config_file: Path) -> None:
    result = invoke(["config", "show"], env={"VAULT_TOKEN": "t0ken-value"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"# config file: {config_file}"
    assert any(ln.split() == [f"{config_file}:3", "vault.timeout=3.0"] for ln in lines)
    assert any(ln.split() == ["env:VAULT_TOKEN", "vault.token=********"] for ln in lines)
    assert any(ln.split() == ["default", "vault.namespace=(unset)"] for ln in lines)
    assert "t0ken-value" not in result.output


def test_show_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["config", "show", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["file"] is None


def test_show_masks_a_password_inside_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            leak_canary) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    password = leak_canary.new()
    result = invoke(["config", "show", "--json"],
                    env={"VAULT_ADDR": f"https://ops:{password}@vault:8200,http://b:8200",
                         "VAULTKIT_AWS_ENDPOINT_URL": f"http://minio:{password}@127.0.0.1:9000"})
    assert result.exit_code == 0, result.output
    leak_canary.watch_text(result.output, where="config show --json")
    rows = {r["name"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["vault.addr"]["value"] == ["https://ops:********@vault:8200", "http://b:8200"]
    assert rows["vault.addr"]["masked"] is True
    assert rows["aws.endpoint_url"]["value"] == "http://minio:********@127.0.0.1:9000"
