from __future__ import annotations

from pathlib import Path

import pytest

from vaultkit.config import Config
from vaultkit.errors import ConfigError


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    c = Config.load(env={}, cwd=tmp_path)
    assert c.source is None
    assert c.vault.addr == ()
    assert c.aws.endpoint_url is None
    assert c.local_keys.store == "auto"


def test_vaultkit_toml(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text(
        '[vault]\naddr = ["http://a:8200", "http://b:8200"]\nauth = "approle"\n'
        'role_id = "r"\n[aws]\nregion = "eu-west-1"\n[secrets]\nDB = "vault://kv/app#db"\n'
    )
    c = Config.load(env={}, cwd=tmp_path)
    assert c.vault.addr == ("http://a:8200", "http://b:8200")
    assert c.vault.auth == "approle"
    assert c.aws.region == "eu-west-1"
    assert c.section("secrets") == {"DB": "vault://kv/app#db"}
    assert c.source and c.source.endswith("vaultkit.toml")


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vaultkit.aws]\nregion = "us-west-2"\n')
    c = Config.load(env={}, cwd=tmp_path)
    assert c.aws.region == "us-west-2"
    assert c.source and c.source.endswith("[tool.vaultkit]")


def test_vaultkit_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vaultkit.aws]\nregion = "us-west-2"\n')
    (tmp_path / "vaultkit.toml").write_text('[aws]\nregion = "eu-west-1"\n')
    assert Config.load(env={}, cwd=tmp_path).aws.region == "eu-west-1"


def test_ecosystem_vars_override_file_and_vaultkit_vars_override_both(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text('[vault]\naddr = "http://file:8200"\n')
    env = {"VAULT_ADDR": "http://eco:8200", "VAULT_TOKEN": "t", "VAULT_NAMESPACE": "ns",
           "VAULT_CACERT": "/ca.pem", "AWS_REGION": "ap-south-1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    c = Config.load(env=env, cwd=tmp_path)
    assert c.vault.addr == ("http://eco:8200",)
    assert c.vault.token == "t"
    assert c.vault.namespace == "ns"
    assert c.vault.cacert == "/ca.pem"
    assert c.aws.region == "ap-south-1"
    assert c.aws.endpoint_url == "http://127.0.0.1:5000"
    env["VAULTKIT_VAULT_ADDR"] = "http://a:1,http://b:2"
    env["VAULTKIT_AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    env["VAULTKIT_LOCAL_KEYS_STORE"] = "file"
    env["VAULTKIT_CA_HOME"] = "/srv/ca"
    c = Config.load(env=env, cwd=tmp_path)
    assert c.vault.addr == ("http://a:1", "http://b:2")
    assert c.aws.endpoint_url == "http://127.0.0.1:9"
    assert c.local_keys.store == "file"
    assert c.section("ca") == {"home": "/srv/ca"}


def test_bao_addr_is_honoured(tmp_path: Path) -> None:
    assert Config.load(env={"BAO_ADDR": "http://bao:8200"}, cwd=tmp_path).vault.addr == (
        "http://bao:8200",)


def test_token_is_not_in_repr(tmp_path: Path, leak_canary) -> None:
    token = leak_canary.new()
    c = Config.load(env={"VAULT_TOKEN": token}, cwd=tmp_path)
    leak_canary.watch(c, c.vault)


@pytest.mark.parametrize("text, match", [
    ("[vault]\nbogus = 1\n", "unknown setting vault.bogus"),
    ("[vault]\ntimeout = \"soon\"\n", "must be a number"),
    ("[vault]\ntls_verify = \"maybe\"\n", "must be a boolean"),
    ("vault = 3\n", "must be a table"),
    ("[vault\n", "invalid TOML"),
])
def test_bad_files_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "vaultkit.toml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        Config.load(env={}, cwd=tmp_path)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="not found"):
        Config.load(env={"VAULTKIT_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)
