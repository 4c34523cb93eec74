"""vaultkit: secrets at boot, field encryption, an offline mTLS CA and expiring encrypted exports.

``import vaultkit`` is cheap: boto3, hvac, pyzipper and SQLAlchemy are imported
only where they are used.
"""

from __future__ import annotations

from .config import Config
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
from .keys import DataKey, KeyProvider, get_key_provider
from .secret import Secret

__version__ = "0.1.0"

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
    "get_key_provider",
]
