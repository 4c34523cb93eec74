"""Vault auth methods, and which one a client uses (Vault Agent's ``auto_auth`` precedence).

Which identity is used, in order:

1. ``[vault] auth = "<method>"``: that method and no other. ``auth = "token"`` uses the
   ambient token (``BAO_TOKEN``/``VAULT_TOKEN``/``[vault] token``, else the token file).
2. A method *configured* by its settings, as Vault Agent's ``auto_auth`` block does:
   ``approle`` (``role_id``), ``kubernetes`` (``role`` and the service-account token
   file), ``jwt`` (``role`` and ``jwt_file``), ``aws`` (``role``), ``token_file``
   (``[vault] token_file``). The first whose credentials are present logs in. An
   ambient token is *not* used while a method is configured: a root token left in
   ``~/.vault-token`` must not silently replace the service's own AppRole.
3. Nothing configured: the ambient token, then ``~/.vault-token`` (the CLI's own file).

Each login function takes the settings and ``post(mount, payload) -> token``, and returns
``None`` when its credentials are absent.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import Config, VaultSettings
from ...errors import AuthenticationError, ConfigError
from ...files import check_private_file

AUTH_METHODS = ("token", "token_file", "approle", "kubernetes", "jwt", "aws")

Post = Callable[[str, dict[str, Any]], str]


@dataclass(frozen=True)
class Plan:
    """The methods to try, in order, and why (``vaultkit doctor`` prints ``reason``)."""

    methods: tuple[str, ...]
    reason: str
    configured: bool


def plan(s: VaultSettings, *, method: str | None = None) -> Plan:
    """Which methods a login tries for these settings (see the module docstring)."""
    wanted = method or s.auth
    if wanted:
        if wanted not in AUTH_METHODS:
            raise ConfigError(f"unknown vault auth method {wanted!r}; expected one of "
                              f"{', '.join(AUTH_METHODS)}", source="vault")
        why = "asked for by the caller" if method else f'[vault] auth = "{wanted}"'
        if wanted == "token":  # the ambient token, wherever it is
            return Plan(("token", "token_file"), why, True)
        return Plan((wanted,), why, True)
    configured: list[tuple[str, str]] = []
    if s.role_id:
        configured.append(("approle", "[vault] role_id is set"))
    if s.role and Path(s.kubernetes_jwt_file).is_file():
        configured.append(("kubernetes", "[vault] role is set and the Kubernetes "
                                         "service-account token file exists"))
    if s.role and s.jwt_file:
        configured.append(("jwt", "[vault] role and jwt_file are set"))
    if s.role and not s.jwt_file:
        configured.append(("aws", "[vault] role is set"))
    if s.token_file:
        configured.append(("token_file", "[vault] token_file is set"))
    if configured:
        return Plan(tuple(m for m, _ in configured),
                    configured[0][1] + "; a configured auth method is used before any ambient "
                    "token (set auth = \"token\" to use BAO_TOKEN/VAULT_TOKEN instead)", True)
    return Plan(("token", "token_file"),
                "no auth method is configured: the ambient token (BAO_TOKEN/VAULT_TOKEN, "
                "else ~/.vault-token) is used", False)


def login_token(s: VaultSettings, post: Post) -> str | None:
    """The ambient token: ``[vault] token`` (from ``BAO_TOKEN``/``VAULT_TOKEN``)."""
    return s.token or None


def login_token_file(s: VaultSettings, post: Post) -> str | None:
    path = Path(s.token_file) if s.token_file else Path.home() / ".vault-token"
    if not path.is_file():
        if s.token_file:
            raise ConfigError("vault.token_file does not exist", reference=str(path))
        return None
    check_private_file(path)
    return read_credential(path, "the Vault token file") or None


def read_credential(path: str | os.PathLike[str], what: str) -> str:
    """A credential file's text, stripped; a :class:`ConfigError` naming only the file.

    A ``UnicodeDecodeError`` keeps the file's bytes (the token) in ``.object``, so no
    exception is chained or left as ``__context__``.
    """
    failure = ""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        data, failure = b"", exc.strerror or type(exc).__name__
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        text, failure = "", "not UTF-8 text"
    if failure:
        raise ConfigError(f"cannot read {what} ({failure})", source="vault",
                          reference=str(path))
    return text


def _secret_from(file: str | None, env: str | None) -> str | None:
    if file:
        check_private_file(file)
        return read_credential(file, "the AppRole secret id file")
    if env and os.environ.get(env):
        return os.environ[env]
    return None


def login_approle(s: VaultSettings, post: Post) -> str | None:
    secret_id = _secret_from(s.secret_id_file, s.secret_id_env)
    if not s.role_id or secret_id is None:
        return None
    return post(s.auth_mount or "approle", {"role_id": s.role_id, "secret_id": secret_id})


def login_kubernetes(s: VaultSettings, post: Post) -> str | None:
    path = Path(s.kubernetes_jwt_file)
    if not s.role or not path.is_file():
        return None
    # Re-read on every login: the kubelet rotates projected service-account tokens in place.
    jwt = read_credential(path, "the Kubernetes service-account token")
    if not jwt:
        raise ConfigError("the Kubernetes service-account token file is empty",
                          reference=str(path))
    return post(s.auth_mount or "kubernetes", {"role": s.role, "jwt": jwt})


def login_jwt(s: VaultSettings, post: Post) -> str | None:
    if not s.role or not s.jwt_file:
        return None
    jwt = read_credential(s.jwt_file, "the JWT file")
    return post(s.auth_mount or "jwt", {"role": s.role, "jwt": jwt})


def login_aws(s: VaultSettings, post: Post, config: Config | None = None) -> str | None:
    if not s.role:
        return None
    from .. import aws as aws_backend

    cfg = config or Config.load()
    with aws_backend.aws_errors("aws", reference="sts:GetCallerIdentity"):
        creds = aws_backend.session(cfg).get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        return None
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    # Vault replays this signed sts:GetCallerIdentity request against its own configured
    # sts_endpoint, keeping the signed Host, and STS checks the signature. The global
    # endpoint only accepts a us-east-1 credential scope ("Credential should be scoped to
    # a valid region", hvac#251), so sign for sts.amazonaws.com in us-east-1 whatever
    # [aws] region is: that is what Vault's own CLI sends by default and what a Vault
    # with the default (global) sts_endpoint expects. AWS_REGION is ambient on
    # Lambda/ECS, so it must not switch the host to a regional one Vault was not told of.
    url = "https://sts.amazonaws.com/"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               # Explicit, so the Host Vault forwards is exactly the one that was signed.
               "Host": "sts.amazonaws.com"}
    if s.aws_header_value:
        # Signed too: binds the request to this Vault (iam_server_id_header_value),
        # so a request captured by another server cannot be replayed here.
        headers["X-Vault-AWS-IAM-Server-ID"] = s.aws_header_value
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(frozen, "sts", "us-east-1").add_auth(request)
    signed = json.dumps({k: [v] for k, v in request.headers.items()})
    payload = {
        "iam_http_request_method": "POST",
        "iam_request_url": base64.b64encode(url.encode()).decode(),
        "iam_request_body": base64.b64encode(body.encode()).decode(),
        "iam_request_headers": base64.b64encode(signed.encode()).decode(),
        "role": s.role,
    }
    return post(s.auth_mount or "aws", payload)


def run(name: str, s: VaultSettings, post: Post, config: Config | None) -> str | None:
    """Run one login method; ``None`` when its credentials are absent."""
    if name == "aws":
        return login_aws(s, post, config)
    fn: Callable[[VaultSettings, Post], str | None] = {
        "token": login_token, "token_file": login_token_file, "approle": login_approle,
        "kubernetes": login_kubernetes, "jwt": login_jwt}[name]
    return fn(s, post)


def no_credentials(p: Plan) -> AuthenticationError:
    tried = ", ".join(p.methods)
    extra = ("; an ambient token (BAO_TOKEN/VAULT_TOKEN, ~/.vault-token) is not used while "
             "an auth method is configured" if p.configured and "token" not in p.methods else "")
    return AuthenticationError(f"no Vault credentials found (tried: {tried}){extra}",
                               source="vault")


__all__ = ["AUTH_METHODS", "Plan", "no_credentials", "plan", "run"]
