"""Every configuration setting, defined once: name, type, default, meaning, secrecy.

:mod:`vaultkit.config` checks files and ``VAULTKIT_*`` variables against these definitions
(an unknown section or key is a :class:`~vaultkit.errors.ConfigError` naming the file and
line and the nearest valid key), ``vaultkit config show`` walks them, and
``python -m vaultkit.config_reference > docs/config.md`` writes the reference from them.

**Adding a setting**: append one :class:`Setting` to :data:`SETTINGS` (for the typed
sections ``vault``, ``aws`` and ``local_keys`` also add the dataclass field in
``vaultkit/config.py``; a test checks that the two agree), read it with
``config.section(name).get(key, default)``, and regenerate ``docs/config.md``. A
``VAULTKIT_*`` variable that is *not* a setting (a passphrase, a path read where it is
used) goes into :data:`ENV_ONLY` instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

STRING = "string"
PATH = "path"
BOOLEAN = "boolean"
INTEGER = "integer"
NUMBER = "number"
STRINGS = "list of strings"
TABLE = "table"


@dataclass(frozen=True)
class Setting:
    """One key of one table. ``section`` is ``""`` for a top-level key and may be dotted
    (``secrets.options``) for a nested table."""

    section: str
    key: str
    type: str
    default: Any
    help: str
    #: The value must never be shown (``config show`` masks it).
    secret: bool = False
    #: For strings: the only values accepted.
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key

    @property
    def env_var(self) -> str | None:
        """``VAULTKIT_<SECTION>_<KEY>``; tables nested below a section have none."""
        if "." in self.section or self.type == TABLE:
            return None
        return "VAULTKIT_" + self.name.replace(".", "_").upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("", "audit_log", PATH, None,
            "Append every audit event (JSON lines, never a value) to this file. The CA "
            "keeps `HOME/audit.jsonl` when this is unset."),
    # [vault] -------------------------------------------------------------------------
    Setting("vault", "addr", STRINGS, (),
            "Vault/OpenBao address, or a list tried in order for fail-over "
            "(a comma-separated string is accepted too)."),
    Setting("vault", "token", STRING, None,
            "A Vault token. Give it through `VAULT_TOKEN` (or `token_file`), never in a "
            "file you commit.", secret=True),
    Setting("vault", "token_file", PATH, None, "A file holding the Vault token."),
    Setting("vault", "cacert", PATH, None, "CA bundle (PEM) that signs Vault's certificate."),
    Setting("vault", "client_cert", PATH, None, "Client certificate (PEM) for TLS to Vault."),
    Setting("vault", "client_key", PATH, None, "Client key (PEM) for TLS to Vault."),
    Setting("vault", "namespace", STRING, None, "Vault Enterprise/OpenBao namespace."),
    Setting("vault", "capath", PATH, None,
            "A folder of CA certificates; with `cacert`, replaces the system store."),
    Setting("vault", "tls_server_name", STRING, None,
            "The name sent in SNI and checked in Vault's certificate."),
    Setting("vault", "skip_verify", BOOLEAN, False,
            "No certificate check at all (logged as a warning on every client)."),
    Setting("vault", "max_connections", INTEGER, 16,
            "Keep-alive connections per address, and threads for a batch of reads."),
    Setting("vault", "auth", STRING, None,
            "Force one auth method; unset: a method configured by its settings, else the "
            "ambient token (Vault Agent's auto_auth precedence).",
            choices=("token", "token_file", "approle", "kubernetes", "jwt", "aws")),
    Setting("vault", "auth_mount", STRING, None,
            "Mount path of the auth method (default: the method's name)."),
    Setting("vault", "role", STRING, None, "Role for Kubernetes, JWT/OIDC or AWS IAM login."),
    Setting("vault", "role_id", STRING, None, "AppRole role id (not a secret)."),
    Setting("vault", "secret_id_file", PATH, None, "A file holding the AppRole secret id."),
    Setting("vault", "secret_id_env", STRING, "VAULT_APPROLE_SECRET_ID",
            "The *name* of the variable that holds the AppRole secret id."),
    Setting("vault", "jwt_file", PATH, None, "A file holding the JWT for JWT/OIDC login."),
    Setting("vault", "kubernetes_jwt_file", PATH,
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "The service-account token for Kubernetes login."),
    Setting("vault", "aws_header_value", STRING, None,
            "`X-Vault-AWS-IAM-Server-ID` value for AWS IAM login."),
    Setting("vault", "timeout", NUMBER, 10.0, "Seconds per request to Vault."),
    Setting("vault", "tls_verify", BOOLEAN, True,
            "Verify Vault's certificate (turn off only against a dev server)."),
    # [aws] ---------------------------------------------------------------------------
    Setting("aws", "region", STRING, None, "AWS region."),
    Setting("aws", "profile", STRING, None, "Named profile of the shared AWS config."),
    Setting("aws", "endpoint_url", STRING, None,
            "Endpoint for every AWS client: moto, LocalStack or MinIO."),
    Setting("aws", "max_pool_connections", INTEGER, 32, "Connections per boto3 client."),
    # [local_keys] --------------------------------------------------------------------
    Setting("local_keys", "store", STRING, "auto",
            "Where `local://` master keys live: the OS keyring if usable, else a 0600 file.",
            choices=("auto", "keyring", "file")),
    Setting("local_keys", "directory", PATH, None,
            "Folder of `local://` key files (default: `$VAULTKIT_HOME/keys`, else "
            "`~/.config/vaultkit/keys`)."),
    # capability tables, read with Config.section(name) -------------------------------
    Setting("secrets.options", "kv_versions", TABLE, None,
            "KV engine version per mount, e.g. `{kv = 2}`; skips the mount lookup."),
    Setting("run", "refresh", NUMBER, 300.0,
            "`vaultkit run`: re-read static secrets this often (seconds); 0 = never."),
    Setting("run", "on_change", STRING, "restart",
            "`vaultkit run`: when a value the child got changes: `restart`, `signal:NAME` "
            "or `none`."),
    Setting("run", "grace", NUMBER, 10.0,
            "`vaultkit run`: seconds between SIGTERM and SIGKILL when stopping the child."),
    Setting("run", "max_restarts", INTEGER, 5,
            "`vaultkit run`: crash restarts in a row before giving up."),
    Setting("run", "restart_backoff", NUMBER, 1.0,
            "`vaultkit run`: first pause before a crash restart (doubles, capped at 30 s)."),
    Setting("run", "max_staleness", NUMBER, 3600.0,
            "`vaultkit run`: stop the child when a value could not be refreshed this long; "
            "0 = never."),
    Setting("keys", "providers", STRINGS, (),
            "Key provider URIs that `vaultkit doctor` round-trips."),
    Setting("field", "keyset", STRING, None,
            "Default keyset location for `vaultkit field` (`file://`, `vault://`, "
            "`awssm://`)."),
    Setting("ca", "home", PATH, None,
            "The CA home (default: `$VAULTKIT_HOME/ca`, else `~/.config/vaultkit/ca`)."),
    Setting("archive", "kms_key_id", STRING, None,
            "SSE-KMS key for `s3://` stores (default: SSE-S3)."),
    Setting("archive", "s3_require_tls", BOOLEAN, True,
            "Refuse plain-http S3 endpoints (turn off only for a local moto/MinIO)."),
)

#: Tables whose keys are the user's own names, with what each entry holds.
#: ``[secrets]``: NAME = "reference" (and the fixed ``[secrets.options]`` table).
FREE_FORM: dict[str, str] = {
    "secrets": "NAME = \"reference\": the environment name a service gets, and where its "
               "value lives (`vault://`, `awssm://`, `ssm://`, `kms:`, `keyring://`, "
               "`env://`, `file://`; see docs/secrets.md).",
}

#: ``VAULTKIT_*`` variables that are not config keys: they are read where they are used.
ENV_ONLY: dict[str, str] = {
    "VAULTKIT_CONFIG": "The config file (also `--config`).",
    "VAULTKIT_HOME": "vaultkit's own folder (default `$XDG_CONFIG_HOME/vaultkit`).",
    "VAULTKIT_ROOT_PASSPHRASE": "The CA root key's passphrase (offline steps).",
    "VAULTKIT_CA_PASSPHRASE": "The intermediate key's passphrase (`ca issue`, `ca crl`, ...).",
    "VAULTKIT_LEAF_PASSPHRASE": "Passphrase for `ca issue --encrypt-key`.",
    "VAULTKIT_P12_PASSPHRASE": "Passphrase for PKCS#12 files (`ca issue --p12`, `ca export`).",
    "VAULTKIT_FIELD_DB_URL": "Database URL for `vaultkit field` (may hold a password).",
    "VAULTKIT_FIELD_LEGACY_KEY": "Old key for `vaultkit field reencrypt --from`.",
    "VAULTKIT_EDIT_DIR": "Where `vaultkit secrets edit` puts the plaintext (default /dev/shm).",
    "VAULTKIT_AUDIT_LOG": "Same as `audit_log` (also read by `vaultkit.audit` directly).",
}

_BY_SECTION: dict[str, dict[str, Setting]] = {}
for _s in SETTINGS:
    _BY_SECTION.setdefault(_s.section, {})[_s.key] = _s


def sections() -> list[str]:
    """Every known table, nested ones as ``a.b``."""
    return sorted({s for s in _BY_SECTION if s} | set(FREE_FORM))


def settings_of(section: str) -> dict[str, Setting]:
    return dict(_BY_SECTION.get(section, {}))


def lookup(section: str, key: str) -> Setting | None:
    return _BY_SECTION.get(section, {}).get(key)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest candidate, or ``""``."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        # A typo that keeps the words but drops a prefix (require_tls -> s3_require_tls).
        close = [c for c in candidates if c.endswith("_" + word) or word.endswith("_" + c)][:1]
    return f"; did you mean {close[0]}?" if close else ""


def coerce(setting: Setting, value: Any) -> Any:
    """Check ``value`` against the setting's type; strings from the environment become the
    type (``"false"`` -> ``False``, ``"a,b"`` -> ``["a", "b"]``)."""
    kind = setting.type
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise ConfigError(f"{setting.name} must be a boolean")
    if kind in (INTEGER, NUMBER):
        try:
            number = (int if kind == INTEGER else float)(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{setting.name} must be a number") from exc
        # Every number in the config is a count or a duration: ``grace = -1`` or ``nan``
        # would otherwise reach the code that waits or loops on it.
        if isinstance(value, bool) or not math.isfinite(number) or number < 0:
            raise ConfigError(f"{setting.name} must be a number of 0 or more")
        return number
    if kind == STRINGS:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{setting.name} must be a string or a list of strings")
    if kind == TABLE:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{setting.name} must be a table")
        return dict(value)
    if not isinstance(value, str):
        raise ConfigError(f"{setting.name} must be a string")
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{setting.name} must be one of {', '.join(setting.choices)}"
                          f"{suggest(value, setting.choices)}")
    return value


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


# --- where a value came from ------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                  r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


@dataclass(frozen=True)
class FileSource:
    """A parsed config file: its label, its text (for line numbers) and, for
    ``pyproject.toml``, the table the settings sit under (``tool.vaultkit``)."""

    label: str
    path: str
    text: str = ""
    prefix: tuple[str, ...] = ()

    def line_of(self, *names: str) -> int | None:
        """The line that sets ``names`` (a table or a key), or that opens its table.

        The file was already parsed by tomllib; this only finds the line for messages
        and ``config show``, so a miss costs a line number, never a value.
        """
        want = self.prefix + names
        table: tuple[str, ...] = ()
        inside = None  # the first line of something nested below ``names``
        for number, line in enumerate(self.text.splitlines(), 1):
            header = _HEADER.match(line)
            if line.lstrip().startswith("[["):
                table = ("[[",)  # arrays of tables hold no settings
            elif header:
                table = _dotted(header.group(1))
                if table == want:
                    return number
                if table[:len(want)] == want:
                    inside = inside or number
            elif key := _KEY.match(line):
                full = table + _dotted(key.group(1))
                if full == want or want[:len(full)] == full:  # the key, or an inline table
                    return number
                if full[:len(want)] == want:
                    inside = inside or number
        return inside

    def where(self, *names: str) -> str:
        line = self.line_of(*names)
        return f"{self.path}:{line}" if line else self.path


__all__ = [
    "ENV_ONLY",
    "FREE_FORM",
    "SETTINGS",
    "FileSource",
    "Setting",
    "coerce",
    "lookup",
    "sections",
    "settings_of",
    "suggest",
]
