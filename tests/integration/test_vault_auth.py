"""The Vault auth chain against OpenBao: token, token file, AppRole, JWT; denial and re-login."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from harness.servers import OpenBao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config, VaultSettings
from vaultkit.errors import (
    AccessDeniedError,
    AuthenticationError,
    InsecureFileError,
    NotFoundError,
    SecretsLoadError,
    VaultkitError,
)
from vaultkit.secrets import load_secrets

pytestmark = pytest.mark.integration

POLICY = """
path "kv2-auth/data/app/*" { capabilities = ["read"] }
"""


@pytest.fixture(scope="module")
def auth_server(openbao: OpenBao) -> OpenBao:
    root = VaultClient.from_config(openbao.config())
    openbao.bao("secrets", "enable", "-path=kv2-auth", "-version=2", "kv", check=False)
    root.write("kv2-auth/data/app/db", {"data": {"password": "app-db-pw"}})
    root.write("kv2-auth/data/other/db", {"data": {"password": "other-pw"}})
    root.request("PUT", "sys/policies/acl/kv-auth-read", json={"policy": POLICY})
    openbao.bao("auth", "enable", "approle", check=False)
    root.write("auth/approle/role/app", {"token_policies": ["kv-auth-read"], "token_ttl": "60s"})
    root.write("auth/approle/role/short", {"token_policies": ["kv-auth-read"],
                                           "token_ttl": "2s", "token_max_ttl": "2s"})
    return openbao


def _private(path: Path, text: str) -> str:
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


def _approle(server: OpenBao, role: str, tmp_path: Path) -> VaultSettings:
    root = VaultClient.from_config(server.config())
    role_id = root.read(f"auth/approle/role/{role}/role-id")["data"]["role_id"]
    secret_id = root.write(f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
    return VaultSettings(addr=(server.addr,), auth="approle", role_id=role_id,
                         secret_id_file=_private(tmp_path / "secret-id", secret_id))


def test_token(auth_server: OpenBao) -> None:
    client = VaultClient.from_config(auth_server.config())
    assert client.login() == "token"
    assert client.lookup_self()["policies"] == ["root"]


def test_token_file(auth_server: OpenBao, tmp_path: Path) -> None:
    path = _private(tmp_path / "token", auth_server.token + "\n")
    cfg = Config(vault=VaultSettings(addr=(auth_server.addr,), token_file=path))
    loaded = load_secrets({"PW": "vault://kv2-auth/app/db#password"}, config=cfg)
    assert loaded.reveal("PW") == "app-db-pw"
    os.chmod(path, 0o644)
    with pytest.raises(InsecureFileError):
        VaultClient(cfg.vault).login()


def test_approle_login_and_access_denied(auth_server: OpenBao, tmp_path: Path,
                                         leak_canary: LeakCanary) -> None:
    cfg = Config(vault=_approle(auth_server, "app", tmp_path))
    client = VaultClient.from_config(cfg)
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"OK": "vault://kv2-auth/app/db#password",
                      "DENIED": "vault://kv2-auth/other/db#password"}, config=cfg, vault=client)
    assert client.auth_method == "approle"
    failures = info.value.failures
    assert set(failures) == {"DENIED"}
    assert isinstance(failures["DENIED"], AccessDeniedError)
    assert "access_denied" in str(info.value) and "permission denied" in str(info.value)
    leak_canary.watch_exception(info.value)


def test_expired_token_triggers_one_relogin(auth_server: OpenBao, tmp_path: Path) -> None:
    cfg = Config(vault=_approle(auth_server, "short", tmp_path))
    # The secret id is reusable (default num_uses 0), so a second login works.
    client = VaultClient.from_config(cfg)
    first = load_secrets({"PW": "vault://kv2-auth/app/db#password"}, config=cfg, vault=client)
    token_before = client.token
    time.sleep(2.5)  # the 2 s token expired
    second = load_secrets({"PW": "vault://kv2-auth/app/db#password"}, config=cfg, vault=client)
    assert first["PW"] == second["PW"]
    assert client.token != token_before


def test_bad_approle_secret_is_an_auth_error(auth_server: OpenBao, tmp_path: Path) -> None:
    settings = _approle(auth_server, "app", tmp_path)
    Path(settings.secret_id_file or "").write_text(str(uuid.uuid4()))
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"PW": "vault://kv2-auth/app/db#password"}, config=Config(vault=settings))
    assert info.value.failures["PW"].category in ("auth", "invalid", "access_denied")


def _es256_jwt(private_key: object, claims: dict[str, object]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    der = private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    r, s = decode_dss_signature(der)
    # RFC 7518 section 3.4: ES256 signatures are the raw 32-byte r || s, not DER.
    return f"{header}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_jwt_login(auth_server: OpenBao, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    root = VaultClient.from_config(auth_server.config())
    auth_server.bao("auth", "enable", "-path=jwt-test", "jwt", check=False)
    root.write("auth/jwt-test/config", {"jwt_validation_pubkeys": [pem]})
    root.write("auth/jwt-test/role/app", {
        "role_type": "jwt", "bound_audiences": ["vaultkit"], "user_claim": "sub",
        "token_policies": ["kv-auth-read"], "token_ttl": "60s"})
    now = int(time.time())
    token = _es256_jwt(key, {"sub": "svc-app", "aud": "vaultkit", "iat": now,
                             "nbf": now - 5, "exp": now + 300})
    settings = VaultSettings(addr=(auth_server.addr,), auth="jwt", auth_mount="jwt-test",
                             role="app", jwt_file=_private(tmp_path / "jwt", token))
    client = VaultClient(settings)
    loaded = load_secrets({"PW": "vault://kv2-auth/app/db#password"},
                          config=Config(vault=settings), vault=client)
    assert loaded.reveal("PW") == "app-db-pw" and client.auth_method == "jwt"

    other = ec.generate_private_key(ec.SECP256R1())
    forged = _es256_jwt(other, {"sub": "svc-app", "aud": "vaultkit", "iat": now,
                                "exp": now + 300})
    bad = VaultSettings(addr=(auth_server.addr,), auth="jwt", auth_mount="jwt-test", role="app",
                        jwt_file=_private(tmp_path / "forged", forged))
    with pytest.raises(VaultkitError) as info:
        VaultClient(bad).login()
    assert info.value.category in ("auth", "invalid", "access_denied")


def test_no_credentials_is_an_auth_error(auth_server: OpenBao) -> None:
    client = VaultClient(VaultSettings(addr=(auth_server.addr,), token_file=None))
    with pytest.raises(AuthenticationError) as info:
        client.login()
    assert "no Vault credentials found" in str(info.value)


def test_error_mapping(auth_server: OpenBao) -> None:
    client = VaultClient.from_config(auth_server.config())
    with pytest.raises(NotFoundError):
        client.read("kv2-auth/data/nothing/here")
    limited = VaultClient(VaultSettings(addr=(auth_server.addr,), token="not-a-real-token"))
    with pytest.raises((AccessDeniedError, AuthenticationError)):
        limited.read("kv2-auth/data/app/db")
