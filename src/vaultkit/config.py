"""Configuration: a TOML file, then the ecosystem's variables, then ``VAULTKIT_*`` variables.

Precedence, lowest first:

1. built-in defaults;
2. the first file found: ``$VAULTKIT_CONFIG``, else ``./vaultkit.toml``, else
   ``[tool.vaultkit]`` in ``./pyproject.toml``;
3. the ecosystem's own variables: the bao/vault CLI's ``BAO_*``, else ``VAULT_*`` (``ADDR``,
   ``TOKEN``, ``CACERT``, ``CAPATH``, ``CLIENT_CERT``, ``CLIENT_KEY``, ``SKIP_VERIFY``,
   ``TLS_SERVER_NAME``, ``NAMESPACE``: :data:`VAULT_ENV`),
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

from . import settings_schema as schema
from .errors import ConfigError
from .settings_schema import FileSource


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
    #: A directory of CA certificates (``*_CAPATH``); with ``cacert``, replaces the system store.
    capath: str | None = None
    #: The name sent in SNI and checked in Vault's certificate (``*_TLS_SERVER_NAME``).
    tls_server_name: str | None = None
    #: ``*_SKIP_VERIFY``: no certificate check (logged as a warning on every client).
    skip_verify: bool = False
    #: Keep-alive connections per address, and threads for a batch of reads (``read_many``).
    max_connections: int = 16
    #: Force one auth method (token, token_file, approle, kubernetes, jwt, aws);
    #: unset: a method configured by its settings, else the ambient token (Vault Agent's
    #: auto_auth precedence; see vaultkit.backends.vault.auth).
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
    #: Setting name (``vault.addr``, ``secrets.DB``) -> where its value came from
    #: (``FILE:LINE`` or ``env:VAR``); a setting not listed has its default.
    origins: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

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
        data, file = _read_file(path, environ, Path(cwd) if cwd else Path.cwd())
        return _build(data, file, environ)


_TYPED = {"vault": VaultSettings, "aws": AwsSettings, "local_keys": LocalKeySettings}

#: The bao/vault CLI's variables (``BAO_<NAME>``, else ``VAULT_<NAME>``) and their settings.
VAULT_ENV: tuple[tuple[str, str], ...] = (
    ("ADDR", "addr"), ("TOKEN", "token"), ("CACERT", "cacert"), ("CAPATH", "capath"),
    ("CLIENT_CERT", "client_cert"), ("CLIENT_KEY", "client_key"),
    ("SKIP_VERIFY", "skip_verify"), ("TLS_SERVER_NAME", "tls_server_name"),
    ("NAMESPACE", "namespace"),
)


def vault_env_sources(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which variable supplies each Vault setting, e.g. ``{"token": "BAO_TOKEN"}``."""
    environ = os.environ if env is None else env
    out: dict[str, str] = {}
    for name, key in VAULT_ENV:
        var = next((v for v in (f"BAO_{name}", f"VAULT_{name}") if environ.get(v)), None)
        own = f"VAULTKIT_VAULT_{key.upper()}"
        if environ.get(own):
            var = own
        if var:
            out[key] = var
    return out


_ECOSYSTEM_VARS: tuple[tuple[str, str, str], ...] = (
    # The bao/vault CLI's variables: VAULT_* first, so that BAO_* (applied after) wins,
    # as the bao binary itself chooses (checked by tests/integration/test_vault_env.py).
    *((f"{prefix}_{name}", "vault", key) for prefix in ("VAULT", "BAO")
      for name, key in VAULT_ENV),
    ("AWS_DEFAULT_REGION", "aws", "region"),
    ("AWS_REGION", "aws", "region"),
    ("AWS_PROFILE", "aws", "profile"),
    ("AWS_ENDPOINT_URL", "aws", "endpoint_url"),
)


def _read_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path
) -> tuple[dict[str, Any], FileSource | None]:
    explicit = path or env.get("VAULTKIT_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError("config file not found", reference=str(p))
        data, text = _parse_toml(p)
        return data, FileSource(str(p), str(p), text)
    candidate = cwd / "vaultkit.toml"
    if candidate.is_file():
        data, text = _parse_toml(candidate)
        return data, FileSource(str(candidate), str(candidate), text)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        doc, text = _parse_toml(pyproject)
        tool = doc.get("tool", {})
        if isinstance(tool, dict) and isinstance(tool.get("vaultkit"), dict):
            return dict(tool["vaultkit"]), FileSource(
                f"{pyproject}[tool.vaultkit]", str(pyproject), text, ("tool", "vaultkit"))
    return {}, None


def _parse_toml(path: Path) -> tuple[dict[str, Any], str]:
    # Imported here: most processes configure through the environment and never parse TOML.
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        text = path.read_bytes().decode("utf-8")
        data: dict[str, Any] = tomllib.loads(text)
        return data, text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", reference=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("invalid TOML: not UTF-8", reference=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", reference=str(path)) from exc


def _coerce(cls: type, key: str, value: Any, where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    if key not in names:
        raise ConfigError(f"unknown setting [{where}] {key}{schema.suggest(key, names)}")
    setting = schema.lookup(where, key)
    if setting is None:  # pragma: no cover - a test keeps every field in the schema
        raise ConfigError(f"setting [{where}] {key} has no definition")
    value = schema.coerce(setting, value)
    # The dataclasses hold lists as tuples (they are frozen and hashable).
    return tuple(value) if isinstance(value, list) else value


def _build(data: Mapping[str, Any], file: FileSource | None, env: Mapping[str, str]) -> Config:
    """Check every table and key against :mod:`vaultkit.settings_schema`, then apply the
    file, the ecosystem's variables and ``VAULTKIT_*`` variables, recording each origin."""
    typed: dict[str, Any] = {name: cls() for name, cls in _TYPED.items()}
    sections: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    audit_log = None
    known_sections = sorted(set(_TYPED) | set(schema.sections()))

    def apply(section: str, key: str, value: Any, origin: str) -> None:
        try:
            if section in _TYPED:
                typed[section] = replace(
                    typed[section], **{key: _coerce(_TYPED[section], key, value, section)})
            elif section in schema.FREE_FORM and schema.lookup(section, key) is None:
                if not isinstance(value, str):  # a typo'd fixed table ([secrets.option]), say
                    fixed = [s for s in known_sections if s.startswith(section + ".")]
                    hint = (schema.suggest(f"{section}.{key}", fixed)
                            if isinstance(value, dict) else "")
                    raise ConfigError(f"[{section}] {key} must be a reference string{hint}")
                sections.setdefault(section, {})[key] = value
            else:
                setting = schema.lookup(section, key)
                if setting is None:
                    raise ConfigError(f"unknown setting [{section}] {key}"
                                      f"{schema.suggest(key, _keys_of(section))}")
                sections.setdefault(section, {})[key] = schema.coerce(setting, value)
        except ConfigError as exc:
            if exc.reference is None:
                exc.reference = origin
            raise
        origins[f"{section}.{key}"] = origin

    def from_file(*names: str) -> str:
        return file.where(*names) if file else "(no file)"

    for name, table in data.items():
        if name == "audit_log":
            audit_log = data[name]
            origins[name] = from_file(name)
            continue
        if name not in known_sections:
            raise ConfigError(f"unknown section [{name}]"
                              f"{schema.suggest(name, [*known_sections, 'audit_log'])}",
                              reference=from_file(name))
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] must be a table", reference=from_file(name))
        for key, value in table.items():
            nested = f"{name}.{key}"
            if isinstance(value, dict) and nested in known_sections:
                # A fixed table below a section, e.g. [secrets.options].
                for sub, sub_value in value.items():
                    if schema.lookup(nested, sub) is None:
                        raise ConfigError(
                            f"unknown setting [{nested}] {sub}"
                            f"{schema.suggest(sub, _keys_of(nested))}",
                            reference=from_file(name, key, sub))
                    sections.setdefault(name, {}).setdefault(key, {})[sub] = schema.coerce(
                        schema.settings_of(nested)[sub], sub_value)
                    origins[f"{nested}.{sub}"] = from_file(name, key, sub)
                continue
            apply(name, key, value, from_file(name, key))

    for var, section, key in _ECOSYSTEM_VARS:
        if env.get(var):
            apply(section, key, env[var], f"env:{var}")
    by_length = sorted((s for s in known_sections if "." not in s), key=len, reverse=True)
    for var, value in env.items():
        if not var.startswith("VAULTKIT_") or var in _RESERVED_ENV:
            continue
        rest = var[len("VAULTKIT_"):].lower()
        if rest == "audit_log":
            audit_log = value
            origins["audit_log"] = f"env:{var}"
            continue
        table = next((s for s in by_length if rest.startswith(s + "_")), None)
        key = rest[len(table) + 1:] if table else ""
        if table is None or (table not in schema.FREE_FORM and key not in _keys_of(table)):
            raise _unknown_variable(var)
        apply(table, key, value, f"env:{var}")
    if audit_log is not None and not isinstance(audit_log, str):
        raise ConfigError("audit_log must be a path", reference=origins.get("audit_log"))
    return Config(sections=sections, source=file.label if file else None, audit_log=audit_log,
                  origins=origins, **typed)


def _keys_of(section: str) -> list[str]:
    """The valid keys of a table: the dataclass fields of a typed one, else the schema's."""
    if section in _TYPED:
        return [f.name for f in fields(_TYPED[section])]
    return list(schema.settings_of(section))


def _unknown_variable(var: str) -> ConfigError:
    names = {s.env_var for s in schema.SETTINGS if s.env_var} | set(schema.ENV_ONLY)
    names |= {f"VAULTKIT_{section.upper()}_{f.name.upper()}"
              for section, cls in _TYPED.items() for f in fields(cls)}
    # Compared without the common prefix, which would make every name look close.
    hint = schema.suggest(var[len("VAULTKIT_"):], sorted(n[len("VAULTKIT_"):] for n in names))
    return ConfigError(f"unknown variable {var}{hint.replace('mean ', 'mean VAULTKIT_')}",
                       reference=f"env:{var}")


#: VAULTKIT_* variables that are not config keys (they are read where they are used).
_RESERVED_ENV = frozenset(schema.ENV_ONLY) - {"VAULTKIT_AUDIT_LOG"}

__all__ = ["AwsSettings", "Config", "LocalKeySettings", "VaultSettings", "default_config_dir"]
