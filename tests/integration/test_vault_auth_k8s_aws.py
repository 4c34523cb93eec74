"""The auth chain's Kubernetes and AWS IAM methods, and token renewal, against real servers.

* Kubernetes: a real OpenBao ``kubernetes`` auth mount, pointed at a fake Kubernetes API
  (``harness.fake_k8s``, HTTPS) that answers TokenReview for the service accounts it knows.
* AWS IAM: OpenBao 2.x does not ship the ``aws`` auth plugin ("plugin not found in the
  catalog: aws"), so the login is checked by ``harness.fake_aws_auth``, which does what
  Vault's aws auth does with the signed request (checks its shape, the server-id header and
  the SigV4 signature, replays it against moto's STS and compares the caller ARN).
* Renewal: ``VaultClient.renew_self`` against OpenBao, including re-login when refused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from harness.fake_aws_auth import SERVER_ID_HEADER, FakeAwsAuth, start_fake_aws_auth
from harness.fake_k8s import FakeKubernetes, start_fake_kubernetes
from harness.servers import Moto, OpenBao
from vaultkit.backends import aws as aws_backend
from vaultkit.backends.vault import VaultClient
from vaultkit.config import AwsSettings, Config, VaultSettings
from vaultkit.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    VaultkitError,
)

pytestmark = pytest.mark.integration

K8S_MOUNT = "k8s-vk"
KV_MOUNT = "kv2-k8s-vk"
POLICY = f'path "{KV_MOUNT}/data/web/*" {{ capabilities = ["read"] }}\n'


def _private(path: Path, text: str) -> str:
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


# --- Kubernetes ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def k8s(openbao: OpenBao, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKubernetes]:
    fake = start_fake_kubernetes(tmp_path_factory.mktemp("k8s"))
    root = VaultClient.from_config(openbao.config())
    openbao.bao("secrets", "enable", f"-path={KV_MOUNT}", "-version=2", "kv", check=False)
    root.write(f"{KV_MOUNT}/data/web/db", {"data": {"password": "web-db-pw"}})
    root.request("PUT", "sys/policies/acl/k8s-web", json={"policy": POLICY})
    openbao.bao("auth", "enable", f"-path={K8S_MOUNT}", "kubernetes", check=False)
    # Not in a pod: no local service-account CA/JWT, so the CA must be given explicitly and
    # OpenBao reviews each login with the client's own JWT as the bearer token.
    root.write(f"auth/{K8S_MOUNT}/config", {
        "kubernetes_host": fake.url, "kubernetes_ca_cert": fake.ca_pem,
        "disable_local_ca_jwt": True})
    root.write(f"auth/{K8S_MOUNT}/role/web", {
        "bound_service_account_names": ["web"], "bound_service_account_namespaces": ["apps"],
        "token_policies": ["k8s-web"], "token_ttl": "60s"})
    yield fake
    fake.stop()


def _k8s_settings(server: OpenBao, jwt_file: str, role: str = "web") -> VaultSettings:
    # No ``auth``: the whole chain runs and must fall through to kubernetes.
    return VaultSettings(addr=(server.addr,), role=role, auth_mount=K8S_MOUNT,
                         kubernetes_jwt_file=jwt_file)


def test_kubernetes_login_through_the_chain(openbao: OpenBao, k8s: FakeKubernetes,
                                            tmp_path: Path, leak_canary: LeakCanary) -> None:
    jwt = leak_canary.add(k8s.service_account_jwt("apps", "web"))
    client = VaultClient(_k8s_settings(openbao, _private(tmp_path / "token", jwt + "\n")))
    body = client.read(f"{KV_MOUNT}/data/web/db")
    assert body["data"]["data"]["password"] == "web-db-pw"
    assert client.auth_method == "kubernetes"
    meta = client.lookup_self()["meta"]
    assert (meta["service_account_namespace"], meta["service_account_name"]) == ("apps", "web")
    # OpenBao did not take the JWT's word for it: it asked the cluster.
    assert k8s.reviews[-1]["spec"]["token"] == jwt
    leak_canary.watch(client)


def test_kubernetes_denied_tokens_are_vaultkit_errors(openbao: OpenBao, k8s: FakeKubernetes,
                                                      tmp_path: Path,
                                                      leak_canary: LeakCanary) -> None:
    # Well-formed claims for the bound account, but the cluster does not know the token.
    forged = leak_canary.add(k8s.service_account_jwt("apps", "web", register=False))
    client = VaultClient(_k8s_settings(openbao, _private(tmp_path / "forged", forged)))
    with pytest.raises((AuthenticationError, AccessDeniedError)) as info:
        client.login()
    assert info.value.reference == f"auth/{K8S_MOUNT}"
    leak_canary.watch_exception(info.value)

    # A genuine token of another service account is refused by the role binding.
    other = k8s.service_account_jwt("apps", "db")
    client = VaultClient(_k8s_settings(openbao, _private(tmp_path / "other", other)))
    with pytest.raises(AccessDeniedError) as denied:
        client.login(method="kubernetes")
    assert "not authorized" in str(denied.value)


def test_kubernetes_relogin_rereads_the_rotated_token(openbao: OpenBao, k8s: FakeKubernetes,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "token"
    old = k8s.service_account_jwt("apps", "web")
    client = VaultClient(_k8s_settings(openbao, _private(path, old)))
    client.login()
    first = client.token
    # The kubelet rotates the projected token; the old one stops being valid.
    _private(path, k8s.service_account_jwt("apps", "web"))
    del k8s.tokens[old]
    VaultClient.from_config(openbao.config()).write("auth/token/revoke", {"token": first})
    assert client.read(f"{KV_MOUNT}/data/web/db")["data"]["data"]["password"] == "web-db-pw"
    assert client.token != first and client.auth_method == "kubernetes"


def test_kubernetes_unusable_token_file(openbao: OpenBao, k8s: FakeKubernetes,
                                        tmp_path: Path) -> None:
    missing = VaultClient(_k8s_settings(openbao, str(tmp_path / "absent")))
    with pytest.raises(AuthenticationError, match="no Vault credentials found"):
        missing.login(method="kubernetes")
    empty = VaultClient(_k8s_settings(openbao, _private(tmp_path / "empty", "\n")))
    with pytest.raises(ConfigError, match="empty"):
        empty.login()


# --- AWS IAM ------------------------------------------------------------------------

HEADER_VALUE = "vault.vaultkit.test"


@dataclass
class AwsAuth:
    fake: FakeAwsAuth
    arn: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="module")
def aws_auth(moto_server: Moto) -> Iterator[AwsAuth]:
    import boto3

    # An IAM user with its own access key makes moto's GetCallerIdentity ARN predictable.
    iam = boto3.client("iam", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    user = f"vk-app-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    fake = start_fake_aws_auth(moto_server.endpoint_url, server_id_header_value=HEADER_VALUE)
    fake.roles["app"] = arn
    fake.roles["other"] = "arn:aws:iam::123456789012:user/someone-else"
    fake.secret_keys[key["AccessKeyId"]] = key["SecretAccessKey"]
    yield AwsAuth(fake, arn, key["AccessKeyId"], key["SecretAccessKey"])
    fake.stop()


@pytest.fixture
def aws_user_env(aws_auth: AwsAuth, monkeypatch: pytest.MonkeyPatch) -> AwsAuth:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws_auth.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_auth.secret_key)
    aws_backend.reset_clients()  # boto3 sessions cache the credentials they resolved
    return aws_auth


def _aws_config(fake: FakeAwsAuth, role: str = "app", header: str | None = HEADER_VALUE,
                region: str = "eu-west-1") -> Config:
    # eu-west-1 on purpose: the global STS endpoint still needs a us-east-1 signature.
    return Config(vault=VaultSettings(addr=(fake.url,), role=role, aws_header_value=header,
                                      token_file=None),
                  aws=AwsSettings(region=region))


def test_aws_iam_login_through_the_chain(aws_user_env: AwsAuth,
                                         leak_canary: LeakCanary) -> None:
    leak_canary.add(aws_user_env.secret_key)
    fake = aws_user_env.fake
    client = VaultClient.from_config(_aws_config(fake))
    assert client.login() == "aws"
    assert client.lookup_self()["meta"]["canonical_arn"] == aws_user_env.arn
    sent = fake.logins[-1]
    assert (sent["method"], sent["url"]) == ("POST", "https://sts.amazonaws.com/")
    assert sent["body"] == "Action=GetCallerIdentity&Version=2011-06-15"
    assert sent["headers"]["Host"] == "sts.amazonaws.com"
    assert sent["headers"][SERVER_ID_HEADER] == HEADER_VALUE
    assert "/us-east-1/sts/aws4_request, SignedHeaders=" in sent["headers"]["Authorization"]
    leak_canary.watch(client, fake.logins)


def test_aws_iam_refusals_are_vaultkit_errors(aws_user_env: AwsAuth) -> None:
    fake = aws_user_env.fake
    # The caller's ARN is not the one the role is bound to.
    with pytest.raises(AccessDeniedError, match="does not belong to the role"):
        VaultClient.from_config(_aws_config(fake, role="other")).login(method="aws")
    with pytest.raises(ConfigError, match="role nope not found"):
        VaultClient.from_config(_aws_config(fake, role="nope")).login(method="aws")
    # Signed for another Vault (or none): the server-id header check refuses it.
    with pytest.raises(VaultkitError, match="X-Vault-AWS-IAM-Server-ID"):
        VaultClient.from_config(_aws_config(fake, header="another.vault")).login(method="aws")


def test_aws_iam_wrong_secret_key_fails_the_signature(aws_user_env: AwsAuth,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    aws_backend.reset_clients()
    with pytest.raises(AccessDeniedError, match="SignatureDoesNotMatch"):
        VaultClient.from_config(_aws_config(aws_user_env.fake)).login(method="aws")


def test_aws_without_credentials_is_skipped_by_the_chain(aws_auth: AwsAuth,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws_backend.reset_clients()
    with pytest.raises(AuthenticationError, match="no Vault credentials found"):
        VaultClient.from_config(_aws_config(aws_auth.fake)).login()


# --- token renewal ------------------------------------------------------------------

@pytest.fixture(scope="module")
def renew_server(openbao: OpenBao) -> OpenBao:
    root = VaultClient.from_config(openbao.config())
    openbao.bao("auth", "enable", "-path=approle-renew", "approle", check=False)
    root.write("auth/approle-renew/role/svc", {"token_policies": ["default"],
                                               "token_ttl": "30s", "token_max_ttl": "120s"})
    root.write("auth/approle-renew/role/batch", {"token_policies": ["default"],
                                                 "token_type": "batch", "token_ttl": "30s"})
    return openbao


def _approle(server: OpenBao, role: str, tmp_path: Path) -> VaultSettings:
    root = VaultClient.from_config(server.config())
    role_id = root.read(f"auth/approle-renew/role/{role}/role-id")["data"]["role_id"]
    secret_id = root.write(f"auth/approle-renew/role/{role}/secret-id")["data"]["secret_id"]
    return VaultSettings(addr=(server.addr,), auth="approle", auth_mount="approle-renew",
                         role_id=role_id,
                         secret_id_file=_private(tmp_path / f"secret-id-{role}", secret_id))


def test_renew_self_extends_the_ttl(renew_server: OpenBao) -> None:
    root = VaultClient.from_config(renew_server.config())
    created = root.write("auth/token/create", {"policies": ["default"], "ttl": "30s",
                                               "explicit_max_ttl": "60s", "renewable": True})
    client = VaultClient(VaultSettings(addr=(renew_server.addr,),
                                       token=created["auth"]["client_token"]))
    before = client.lookup_self()["ttl"]
    assert 0 < before <= 30
    renewed = client.renew_self(increment=55)
    assert renewed["lease_duration"] > 30
    after = client.lookup_self()["ttl"]
    assert 30 < after <= 60  # explicit_max_ttl caps it
    assert client.token == created["auth"]["client_token"]


def test_renew_self_logs_in_again_when_the_token_was_revoked(renew_server: OpenBao,
                                                             tmp_path: Path) -> None:
    client = VaultClient(_approle(renew_server, "svc", tmp_path))
    client.login()
    revoked = client.token
    VaultClient.from_config(renew_server.config()).write("auth/token/revoke",
                                                         {"token": revoked})
    client.renew_self()
    assert client.token and client.token != revoked and client.auth_method == "approle"
    assert client.lookup_self()["display_name"] == "approle-renew"


def test_renew_self_logs_in_again_when_renewal_is_refused(renew_server: OpenBao,
                                                          tmp_path: Path) -> None:
    # Batch tokens cannot be renewed at all: the server refuses, the client logs in anew.
    client = VaultClient(_approle(renew_server, "batch", tmp_path))
    client.login()
    first = client.token
    assert client.renew_self() == {"relogin": True}
    assert client.token and client.token != first
    assert client.lookup_self()["type"] == "batch"


def test_renew_self_with_a_dead_fixed_token_is_an_auth_error(renew_server: OpenBao) -> None:
    from vaultkit.errors import AuthenticationError

    root = VaultClient.from_config(renew_server.config())
    token = root.write("auth/token/create", {"policies": ["default"], "ttl": "30s"})
    fixed = token["auth"]["client_token"]
    client = VaultClient(VaultSettings(addr=(renew_server.addr,), token=fixed))
    client.login()
    root.write("auth/token/revoke", {"token": fixed})
    with pytest.raises(AuthenticationError, match="can no longer be renewed"):
        client.renew_self()
