"""Auth precedence as Vault Agent's auto_auth, against real OpenBao: a configured method beats
an ambient token (``VAULT_TOKEN``, ``~/.vault-token``), proven with ``auth/token/lookup-self``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.servers import OpenBao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config
from vaultkit.errors import AuthenticationError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def approle(openbao: OpenBao) -> dict[str, str]:
    root = VaultClient.from_config(openbao.config())
    openbao.bao("auth", "enable", "-path=approle-prec", "approle", check=False)
    root.request("PUT", "sys/policies/acl/prec-read", json={
        "policy": 'path "secret/data/prec/*" { capabilities = ["read"] }'})
    root.write("auth/approle-prec/role/svc", {"token_policies": ["prec-read"]})
    role_id = root.read("auth/approle-prec/role/svc/role-id")["data"]["role_id"]
    secret_id = root.write("auth/approle-prec/role/svc/secret-id")["data"]["secret_id"]
    return {"role_id": role_id, "secret_id": secret_id}


@pytest.fixture
def ambient_root(openbao: OpenBao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A root token in ``~/.vault-token`` and in ``VAULT_TOKEN``, as on an operator's laptop."""
    monkeypatch.setenv("HOME", str(tmp_path))
    token_file = tmp_path / ".vault-token"
    token_file.write_text(openbao.token)
    token_file.chmod(0o600)
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    return tmp_path


def _config(tmp_path: Path, body: str) -> Config:
    (tmp_path / "vaultkit.toml").write_text(body)
    return Config.load(cwd=tmp_path)


def _secret_id_file(tmp_path: Path, secret_id: str) -> Path:
    path = tmp_path / "secret-id"
    path.write_text(secret_id)
    os.chmod(path, 0o600)
    return path


def test_a_configured_approle_beats_a_root_token_file_and_env(
        ambient_root: Path, approle: dict[str, str]) -> None:
    sid = _secret_id_file(ambient_root, approle["secret_id"])
    config = _config(ambient_root, f'[vault]\nrole_id = "{approle["role_id"]}"\n'
                                   f'secret_id_file = "{sid}"\nauth_mount = "approle-prec"\n')
    assert config.vault.token  # VAULT_TOKEN is there, and must not be used
    client = VaultClient.from_config(config)
    assert client.login() == "approle"
    me = client.lookup_self()
    assert me["path"] == "auth/approle-prec/login"
    assert "root" not in me["policies"] and "prec-read" in me["policies"]
    assert "role_id is set" in (client.auth_reason or "")


def test_auth_token_says_to_use_the_ambient_token(ambient_root: Path,
                                                  approle: dict[str, str]) -> None:
    sid = _secret_id_file(ambient_root, approle["secret_id"])
    config = _config(ambient_root, f'[vault]\nauth = "token"\nrole_id = "{approle["role_id"]}"\n'
                                   f'secret_id_file = "{sid}"\nauth_mount = "approle-prec"\n')
    client = VaultClient.from_config(config)
    assert client.login() == "token"
    assert client.lookup_self()["policies"] == ["root"]


def test_the_token_file_when_nothing_is_configured(ambient_root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    client = VaultClient.from_config(Config.load(cwd=ambient_root))
    assert client.login() == "token_file"
    assert client.lookup_self()["policies"] == ["root"]


def test_a_configured_method_without_credentials_does_not_fall_back(
        ambient_root: Path, approle: dict[str, str]) -> None:
    config = _config(ambient_root, f'[vault]\nrole_id = "{approle["role_id"]}"\n'
                                   'secret_id_env = "NO_SUCH_VARIABLE"\n')
    with pytest.raises(AuthenticationError, match=r"ambient token .* is not used"):
        VaultClient.from_config(config).login()
