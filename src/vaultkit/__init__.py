"""vaultkit: secrets at boot, field encryption, an offline mTLS CA and expiring encrypted exports.

``import vaultkit`` is cheap: boto3, urllib3, pyzipper and SQLAlchemy are imported
only where they are used, and :class:`Config` and the key-provider names below load
on first use (``vaultkit ca issue`` starts its key's KDF before they are needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports as _lazy_exports
from .errors import (
    AccessDeniedError,
    ArchiveError,
    AuthenticationError,
    BackendError,
    CAError,
    ConfigError,
    CryptoError,
    DeadlineExceededError,
    DecryptionError,
    InsecureFileError,
    InvalidReferenceError,
    KeyProviderError,
    NotFoundError,
    SecretsLoadError,
    StorageError,
    TLSError,
    UnavailableError,
    VaultkitError,
)
from .secret import Secret

if TYPE_CHECKING:
    from logging import Handler

    from .config import Config
    from .keys import DataKey, KeyProvider, get_key_provider
    from .secrets.loader import LoadedSecrets
    from .secrets.redaction import RedactingFilter

__version__ = "0.1.0"

#: public name -> the submodule that defines it, imported on first use
_LAZY = {
    "Config": "config",
    "DataKey": "keys",
    "KeyProvider": "keys",
    "get_key_provider": "keys",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())


def load_secrets(spec: Any = None, **kwargs: Any) -> LoadedSecrets:
    """Load a service's secrets at boot; see :func:`vaultkit.secrets.loader.load_secrets`.

    >>> secrets = vaultkit.load_secrets({"DB_PASSWORD": "vault://kv/app#db"})  # doctest: +SKIP
    >>> secrets["DB_PASSWORD"].reveal()                                         # doctest: +SKIP

    A thin wrapper so that ``import vaultkit`` does not import the loader (or urllib3/boto3).
    """
    from .secrets.loader import load_secrets as _load_secrets

    return _load_secrets(spec, **kwargs)


def from_env(prefix: str = "", **kwargs: Any) -> dict[str, str]:
    """References held in environment variables; see :func:`vaultkit.secrets.loader.from_env`."""
    from .secrets.loader import from_env as _from_env

    return _from_env(prefix, **kwargs)


def install_redaction(values: Any, handlers: list[Handler] | None = None) -> RedactingFilter:
    """Scrub loaded values from log records; see :mod:`vaultkit.secrets.redaction`."""
    from .secrets.redaction import install_redaction as _install

    return _install(values, handlers)


__all__ = [
    "AccessDeniedError",
    "ArchiveError",
    "AuthenticationError",
    "BackendError",
    "CAError",
    "Config",
    "ConfigError",
    "CryptoError",
    "DataKey",
    "DeadlineExceededError",
    "DecryptionError",
    "InsecureFileError",
    "InvalidReferenceError",
    "KeyProvider",
    "KeyProviderError",
    "NotFoundError",
    "Secret",
    "SecretsLoadError",
    "StorageError",
    "TLSError",
    "UnavailableError",
    "VaultkitError",
    "__version__",
    "from_env",
    "get_key_provider",
    "install_redaction",
    "load_secrets",
]
