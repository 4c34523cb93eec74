"""Configuration: a TOML file, then the ecosystem's variables, then ``VAULTKIT_*`` variables.

Precedence, lowest first:

1. built-in defaults;
2. the first file found: ``$VAULTKIT_CONFIG``, else ``./vaultkit.toml``, else
   ``[tool.vaultkit]`` in ``./pyproject.toml``;
3. the ecosystem's own variables: ``VAULT_ADDR``/``BAO_ADDR``, ``VAULT_TOKEN``/``BAO_TOKEN``,
   ``VAULT_CACERT``, ``VAULT_CLIENT_CERT``, ``VAULT_CLIENT_KEY``, ``VAULT_NAMESPACE``,
   ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``;
4. ``VAULTKIT_<SECTION>_<KEY>`` variables, e.g. ``VAULTKIT_VAULT_ADDR``,
   ``VAULTKIT_AWS_ENDPOINT_URL``, ``VAULTKIT_LOCAL_KEYS_STORE``.

Example ``vaultkit.toml``::

    [vault]
    addr = "https://vault.internal:8200"      # or a list, for fail-over
    auth = "approle"                            # or leave unset to run the whole chain
    role_id = "..."                             # not secret
    secret_id_file = "/run/secrets/secret-id"   # secret: read from a file, never inline

    [aws]
    region = "eu-west-1"
    endpoint_url = "http://127.0.0.1:5000"      # moto, LocalStack or MinIO

    [secrets]
    DATABASE_URL = "vault://kv/app#database_url"

Capabilities read their own sections with :meth:`Config.section`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError


def default_config_dir() -> Path:
    """``$VAULTKIT_HOME``, else ``$XDG_CONFIG_HOME/vaultkit``, else ``~/.config/vaultkit``."""
    if env := os.environ.get("VAULTKIT_HOME"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vaultkit"


@dataclass(frozen=True)
class VaultSettings:
    """How to reach Vault/OpenBao and log in. Holds *paths* to secrets, never secrets,
    except ``token`` when it comes from ``VAULT_TOKEN`` (never from a file on disk)."""

    addr: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    cacert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    namespace: str | None = None
    #: Force one auth method (token, token_file, approle, kubernetes, jwt, aws);
    #: unset runs the chain in that order and uses the first that has credentials.
    auth: str | None = None
    auth_mount: str | None = None
    role: str | None = None
    role_id: str | None = None
    secret_id_file: str | None = None
    #: The *name* of the variable holding the AppRole secret id (not a secret itself).
    secret_id_env: str = "VAULT_APPROLE_SECRET_ID"  # noqa: S105
    jwt_file: str | None = None
    kubernetes_jwt_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    aws_header_value: str | None = None
    timeout: float = 10.0
    tls_verify: bool = True


@dataclass(frozen=True)
class AwsSettings:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_pool_connections: int = 32


@dataclass(frozen=True)
class LocalKeySettings:
    #: Where ``local://`` master keys live: ``auto`` (keyring if usable, else file),
    #: ``keyring`` or ``file``.
    store: str = "auto"
    directory: str | None = None


@dataclass(frozen=True)
class Config:
    vault: VaultSettings = field(default_factory=VaultSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    local_keys: LocalKeySettings = field(default_factory=LocalKeySettings)
    #: Every other table of the file, by name (``secrets``, ``field``, ``ca``, ``archive``, ...).
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Where the file settings came from, if anywhere.
    source: str | None = None
    audit_log: str | None = None

    def section(self, name: str) -> Mapping[str, Any]:
        """A capability's own table, or an empty mapping."""
        return self.sections.get(name, {})

    @property
    def local_keys_dir(self) -> Path:
        return Path(self.local_keys.directory) if self.local_keys.directory else (
            default_config_dir() / "keys"
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Load configuration from the file (if any) and the environment.

        >>> Config.load(env={"VAULT_ADDR": "http://127.0.0.1:8200"}).vault.addr
        ('http://127.0.0.1:8200',)
        """
        environ = os.environ if env is None else env
        data, source = _read_file(path, environ, Path(cwd) if cwd else Path.cwd())
        return _build(data, source, environ)


_TYPED = {"vault": VaultSettings, "aws": AwsSettings, "local_keys": LocalKeySettings}

_ECOSYSTEM_VARS: tuple[tuple[str, str, str], ...] = (
    ("BAO_ADDR", "vault", "addr"),
    ("VAULT_ADDR", "vault", "addr"),
    ("BAO_TOKEN", "vault", "token"),
    ("VAULT_TOKEN", "vault", "token"),
    ("VAULT_CACERT", "vault", "cacert"),
    ("VAULT_CLIENT_CERT", "vault", "client_cert"),
    ("VAULT_CLIENT_KEY", "vault", "client_key"),
    ("VAULT_NAMESPACE", "vault", "namespace"),
    ("AWS_DEFAULT_REGION", "aws", "region"),
    ("AWS_REGION", "aws", "region"),
    ("AWS_PROFILE", "aws", "profile"),
    ("AWS_ENDPOINT_URL", "aws", "endpoint_url"),
)


def _read_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path
) -> tuple[dict[str, Any], str | None]:
    explicit = path or env.get("VAULTKIT_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError("config file not found", reference=str(p))
        return _parse_toml(p), str(p)
    candidate = cwd / "vaultkit.toml"
    if candidate.is_file():
        return _parse_toml(candidate), str(candidate)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        tool = _parse_toml(pyproject).get("tool", {})
        if isinstance(tool, dict) and isinstance(tool.get("vaultkit"), dict):
            return dict(tool["vaultkit"]), f"{pyproject}[tool.vaultkit]"
    return {}, None


def _parse_toml(path: Path) -> dict[str, Any]:
    # Imported here: most processes configure through the environment and never parse TOML.
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", reference=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", reference=str(path)) from exc


def _coerce(cls: type, key: str, value: Any, where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    if key not in names:
        raise ConfigError(f"unknown setting {where}.{key}")
    default = getattr(cls(), key)
    if key == "addr":
        if isinstance(value, str):
            return tuple(a.strip() for a in value.split(",") if a.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}.addr must be a string or a list of strings")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                        "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}.{key} must be a boolean")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            return type(default)(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}.{key} must be a number") from exc
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    return value


def _build(data: Mapping[str, Any], source: str | None, env: Mapping[str, str]) -> Config:
    typed: dict[str, Any] = {name: cls() for name, cls in _TYPED.items()}
    sections: dict[str, dict[str, Any]] = {}
    audit_log = data.get("audit_log")
    for name, table in data.items():
        if name == "audit_log":
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] must be a table", reference=source)
        if name in _TYPED:
            cls = _TYPED[name]
            typed[name] = replace(
                typed[name], **{k: _coerce(cls, k, v, name) for k, v in table.items()}
            )
        else:
            sections[name] = dict(table)

    def apply(section: str, key: str, value: str) -> None:
        if section in _TYPED:
            typed[section] = replace(
                typed[section], **{key: _coerce(_TYPED[section], key, value, section)}
            )
        else:
            sections.setdefault(section, {})[key] = value

    for var, section, key in _ECOSYSTEM_VARS:
        if env.get(var):
            apply(section, key, env[var])
    known = sorted(_TYPED, key=len, reverse=True)
    for var, value in env.items():
        if not var.startswith("VAULTKIT_") or var in _RESERVED_ENV:
            continue
        rest = var[len("VAULTKIT_"):].lower()
        if rest == "audit_log":
            audit_log = value
            continue
        for section in known:
            if rest.startswith(section + "_"):
                apply(section, rest[len(section) + 1:], value)
                break
        else:
            # Capability tables: VAULTKIT_CA_HOME -> [ca] home.
            if "_" in rest:
                section, key = rest.split("_", 1)
                apply(section, key, value)
    if audit_log is not None and not isinstance(audit_log, str):
        raise ConfigError("audit_log must be a path")
    return Config(sections=sections, source=source, audit_log=audit_log, **typed)


#: VAULTKIT_* variables that are not config keys (they are read where they are used).
_RESERVED_ENV = frozenset({
    "VAULTKIT_CONFIG",
    "VAULTKIT_HOME",
    "VAULTKIT_ROOT_PASSPHRASE",
    "VAULTKIT_CA_PASSPHRASE",
})

__all__ = ["AwsSettings", "Config", "LocalKeySettings", "VaultSettings", "default_config_dir"]
