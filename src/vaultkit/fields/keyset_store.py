"""Where a wrapped keyset lives: a file, a Vault/OpenBao KV v2 path, a Secrets Manager secret.

=========================  =================================================================
``file://<path>``          a JSON file written atomically with mode 0600
``vault://<mount>/<path>`` KV v2 ``<mount>/data/<path>``, field ``keyset``; writes use
                           check-and-set, so two concurrent rotations cannot both win
``awssm://<name>``         a Secrets Manager secret whose SecretString is the keyset JSON
``memory://<name>``        process memory (tests and demos)
=========================  =================================================================

The stored document holds only *wrapped* data keys, so the store needs no more
protection than integrity; the key provider (KMS, transit, local) guards the keys.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import (
    ConfigError,
    InvalidReferenceError,
    KeysetError,
    NotFoundError,
    StorageError,
)
from ..files import write_private

SCHEMES = ("file", "vault", "awssm", "memory")

_memory_lock = threading.Lock()
_memory: dict[str, str] = {}


def _split(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidReferenceError(
            "keyset location must look like file://, vault://, awssm:// or memory://",
            reference=str(uri)[:200])
    scheme, rest = uri.split("://", 1)
    if scheme not in SCHEMES or not rest:
        raise InvalidReferenceError(
            f"unknown keyset location scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
            reference=uri)
    return scheme, rest


def read_keyset(uri: str, *, config: Config | None = None) -> tuple[str, Any]:
    """The stored keyset JSON and a version token (for check-and-set on write)."""
    scheme, rest = _split(uri)
    if scheme == "memory":
        with _memory_lock:
            if rest not in _memory:
                raise NotFoundError("no keyset stored there", source="memory", reference=uri)
            return _memory[rest], None
    if scheme == "file":
        path = Path(rest)
        try:
            return path.read_text(encoding="utf-8"), None
        except FileNotFoundError as exc:
            raise NotFoundError("keyset file not found", source="file", reference=uri) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError("cannot read keyset file", source="file", reference=uri) from exc
    if scheme == "vault":
        from ..backends.vault import vault_client

        mount, kv_path = _vault_path(uri, rest)
        body = vault_client(config).read(f"{mount}/data/{kv_path}", reference=uri)
        data = (body.get("data") or {})
        text = (data.get("data") or {}).get("keyset")
        if not isinstance(text, str):
            raise NotFoundError("no 'keyset' field at that KV path", source="vault",
                                reference=uri)
        return text, (data.get("metadata") or {}).get("version")
    from ..backends import aws

    client = aws.client("secretsmanager", config or Config.load())
    with aws.aws_errors("awssm", reference=uri):
        resp = client.get_secret_value(SecretId=rest)
    text = resp.get("SecretString")
    if not isinstance(text, str):
        raise StorageError("secret has no SecretString", source="awssm", reference=uri)
    return text, resp.get("VersionId")


def write_keyset(uri: str, text: str, *, config: Config | None = None,
                 version: Any = None, create: bool = False) -> Any:
    """Store the keyset JSON; returns the new version token.

    ``create=True`` refuses to replace an existing keyset (``keyset create`` must not
    silently orphan the data encrypted under an old one).
    """
    scheme, rest = _split(uri)
    if scheme == "memory":
        with _memory_lock:
            if create and rest in _memory:
                raise ConfigError("a keyset already exists there; refusing to replace it",
                                  reference=uri)
            _memory[rest] = text
        return None
    if scheme == "file":
        path = Path(rest)
        if create and path.exists():
            raise ConfigError("a keyset already exists there; refusing to replace it",
                              reference=uri)
        write_private(path, text.encode("utf-8"))
        return None
    if scheme == "vault":
        from ..backends.vault import vault_client

        mount, kv_path = _vault_path(uri, rest)
        # KV v2 check-and-set: cas=0 means "only if absent"; cas=N "only if still version N".
        options = {"cas": 0} if create else ({"cas": version} if version is not None else {})
        try:
            body = vault_client(config).write(
                f"{mount}/data/{kv_path}", {"data": {"keyset": text}, "options": options},
                reference=uri)
        except ConfigError as exc:
            if "check-and-set" not in str(exc):
                raise
            raise KeysetError("the stored keyset changed since it was loaded (or already "
                              "exists); load it again and retry", reference=uri) from exc
        return (body.get("data") or {}).get("version")
    from ..backends import aws
    from ..errors import NotFoundError as _NF

    client = aws.client("secretsmanager", config or Config.load())
    if create:
        with aws.aws_errors("awssm", reference=uri):
            resp = client.create_secret(Name=rest, SecretString=text)
        return resp.get("VersionId")
    try:
        with aws.aws_errors("awssm", reference=uri):
            resp = client.put_secret_value(SecretId=rest, SecretString=text)
    except _NF:
        with aws.aws_errors("awssm", reference=uri):
            resp = client.create_secret(Name=rest, SecretString=text)
    return resp.get("VersionId")


def _vault_path(uri: str, rest: str) -> tuple[str, str]:
    rest = rest.strip("/")
    if "/" not in rest:
        raise InvalidReferenceError("vault:// keyset location needs <mount>/<path>",
                                    reference=uri)
    mount, path = rest.split("/", 1)
    return mount, path


__all__ = ["SCHEMES", "read_keyset", "write_keyset"]
