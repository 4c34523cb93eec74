"""Choose a key provider by URI scheme. Unknown schemes are a configuration error."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Config
from ..errors import InvalidReferenceError
from .base import KeyProvider

SCHEMES = ("awskms", "transit", "local", "memory")


def parse_key_uri(uri: str) -> tuple[str, str]:
    """Split ``scheme://rest`` and check the scheme. Returns ``(scheme, rest)``."""
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidReferenceError(
            f"key provider URI must look like scheme://...; schemes: {', '.join(SCHEMES)}",
            reference=str(uri)[:200])
    scheme, rest = uri.split("://", 1)
    if scheme not in SCHEMES:
        raise InvalidReferenceError(
            f"unknown key provider scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
            reference=uri)
    if not rest:
        raise InvalidReferenceError("key provider URI has no key name", reference=uri)
    return scheme, rest


def get_key_provider(uri: str, *, config: Config | None = None) -> KeyProvider:
    """The provider for ``uri``. Cheap for ``memory``/``local``; lazy SDK imports for the rest."""
    scheme, rest = parse_key_uri(uri)
    if scheme == "memory":
        from .memory import MemoryKeyProvider

        return MemoryKeyProvider.named(rest)
    if scheme == "local":
        from .local import LocalKeyProvider

        return LocalKeyProvider(rest, config=config)
    if scheme == "awskms":
        from .aws_kms import AwsKmsKeyProvider

        return AwsKmsKeyProvider(rest, config=config)
    from .vault_transit import TransitKeyProvider

    parts = urlsplit(uri)
    path = (parts.netloc + parts.path).strip("/")
    if "/" not in path:
        raise InvalidReferenceError("transit:// needs <mount>/<key>", reference=uri)
    mount, key = path.rsplit("/", 1)
    return TransitKeyProvider(mount, key, config=config)
