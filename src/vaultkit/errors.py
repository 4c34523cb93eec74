"""vaultkit's exception hierarchy.

Every error vaultkit raises on purpose is a :class:`VaultkitError`. Backend
modules convert SDK exceptions (botocore, urllib3, OSError) into these
classes with ``raise ... from``, so callers never need to import an SDK to
catch a failure.

::

    VaultkitError
    ├── ConfigError                    bad configuration or argument (never retried)
    │   └── InvalidReferenceError      a malformed secret/key/store reference
    ├── InsecureFileError              a private key or key file readable by group/others
    ├── BackendError                   a backend call failed (source, status, retryable)
    │   ├── NotFoundError              the thing does not exist (never retried)
    │   ├── AccessDeniedError          authenticated, but not allowed (never retried)
    │   ├── AuthenticationError        no usable credentials, or login refused
    │   ├── UnavailableError           down, sealed, throttled, 5xx (retryable)
    │   │   └── DeadlineExceededError  the overall deadline ran out
    │   └── TLSError                   certificate or handshake failure (not retryable)
    ├── SecretsLoadError               load_secrets failed; lists every failed reference
    ├── CryptoError                    a cryptographic operation failed
    │   ├── DecryptionError            one fixed message, whatever the cause
    │   ├── KeyProviderError           a key-encryption key could not wrap/unwrap
    │   └── KeysetError                a keyset change is refused (retire primary, key in use)
    │       └── KeysetConflictError    a keyset write lost a check-and-set race
    ├── CAError                        the certificate authority refused an operation
    │   ├── CAKeyError                 a CA key cannot be decrypted, or does not match its cert
    │   │                              (also a CryptoError: exit 5)
    │   └── CertificateRejectedError   ``vaultkit ca verify``: chain, CRL or purpose check failed
    ├── ArchiveError                   an archive could not be built or read
    │   ├── UnsafeEntryNameError       an entry name could escape the extraction folder
    │   └── ArchivePasswordError       wrong password or tampered entry (one fixed message)
    └── StorageError                   an object store operation failed
        └── ObjectExpiredError         the object's retention has ended; it is never served

Backends convert SDK exceptions with :func:`converting` and their own mapper.
Errors carry *context* (``source``, ``reference``, ``status``, ``retryable``)
and never a secret value: messages are built from names and references only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class VaultkitError(Exception):
    """The root of every error vaultkit raises on purpose.

    >>> try:
    ...     raise NotFoundError("no such secret", source="vault", reference="vault://kv/app#pw")
    ... except VaultkitError as exc:
    ...     exc.retryable
    False
    """

    #: Whether trying the same call again may succeed.
    retryable: bool = False
    #: A short machine-readable category, used in aggregated reports and JSON output.
    category: str = "error"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        reference: str | None = None,
        status: int | str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.reference = reference
        self.status = status
        if retryable is not None:
            self.retryable = retryable

    def context(self) -> dict[str, Any]:
        """The error's context as a JSON-friendly mapping (never a value)."""
        return {
            "category": self.category,
            "message": self.message,
            "source": self.source,
            "reference": self.reference,
            "status": self.status,
            "retryable": self.retryable,
        }

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.source:
            details.append(f"source={self.source}")
        if self.reference:
            details.append(f"reference={self.reference}")
        if self.status is not None:
            details.append(f"status={self.status}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class ConfigError(VaultkitError):
    """The configuration or an argument is wrong; retrying will not help."""

    category = "invalid"


class InvalidReferenceError(ConfigError):
    """A reference (secret URI, key provider URI, store URI) is malformed or unknown."""


class InsecureFileError(VaultkitError):
    """A private key file is readable by group or others, or is not a regular file."""

    category = "insecure"


class BackendError(VaultkitError):
    """A call to a backend (Vault, AWS, keyring, disk) failed."""

    category = "backend"


class NotFoundError(BackendError):
    category = "not_found"


class AccessDeniedError(BackendError):
    category = "access_denied"


class AuthenticationError(BackendError):
    category = "auth"


class UnavailableError(BackendError):
    category = "unavailable"
    retryable = True


class DeadlineExceededError(UnavailableError):
    category = "timeout"


class TLSError(BackendError):
    category = "tls"


class SecretsLoadError(VaultkitError):
    """``load_secrets`` failed. ``failures`` maps each failed name to its error."""

    category = "load_failed"

    def __init__(self, failures: dict[str, VaultkitError]) -> None:
        self.failures = dict(failures)
        lines = [f"{len(self.failures)} secret(s) could not be loaded:"]
        for name in sorted(self.failures):
            err = self.failures[name]
            ref = f" [{err.reference}]" if err.reference else ""
            lines.append(f"  - {name}{ref}: {err.category}: {err.message}")
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        return self.message


class CryptoError(VaultkitError):
    category = "crypto"


class DecryptionError(CryptoError):
    """Decryption failed. The message is fixed so that it reveals nothing about why."""

    MESSAGE = "decryption failed"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class KeyProviderError(CryptoError):
    """A key provider could not generate, wrap or unwrap a data key."""


# --- fields (issue 4: field encryption) ---------------------------------------------
class KeysetError(CryptoError):
    """A keyset operation is refused: retiring the primary or a key rows still use,
    promoting a retired key, asking for a key the keyset does not hold."""


class KeysetConflictError(KeysetError):
    """A keyset write lost a check-and-set race: the stored keyset changed since it was
    read (or already exists, for a create). Load it again and redo the change."""


# --- end fields ------------------------------------------------------------------------


class CAError(VaultkitError):
    category = "ca"


# --- CA (issue 5) ---------------------------------------------------------------------
class CAKeyError(CAError, CryptoError):
    """A CA key file cannot be decrypted (wrong passphrase or modified file) or does not
    match its certificate. The message never says which of the two, nor holds key bytes.
    Also a :class:`CryptoError`, so the CLI exits 5 (cryptographic failure)."""

    category = "ca"


class CertificateRejectedError(CAError):
    """A certificate failed verification (chain, validity, CRL or purpose)."""


# --- end CA ------------------------------------------------------------------------------


class ArchiveError(VaultkitError):
    category = "archive"


class StorageError(VaultkitError):
    category = "storage"


# --- archive/ and storage/ (issue 6: expiring encrypted exports) ---------------------


class UnsafeEntryNameError(ArchiveError):
    """An archive entry name is absolute, climbs with ``..``, has a drive letter or control
    characters: it could be extracted outside the destination folder."""

    category = "invalid"


class ArchivePasswordError(ArchiveError):
    """The password is wrong or an entry was tampered with (the message does not say which)."""

    MESSAGE = "wrong password or corrupted archive"

    def __init__(self, reference: str | None = None) -> None:
        super().__init__(self.MESSAGE, reference=reference)


class ObjectExpiredError(StorageError):
    """The object's retention period has ended; stores refuse to serve it."""

    category = "expired"


# --- end of archive/ and storage/ -----------------------------------------------------


#: Maps an SDK exception to a vaultkit error (given source and reference), or ``None`` if foreign.
ExceptionMapper = Callable[..., "VaultkitError | None"]


@contextlib.contextmanager
def converting(mapper: ExceptionMapper, source: str, reference: str | None = None) -> Iterator[None]:
    """Re-raise exceptions from the block as the vaultkit error ``mapper`` gives (``raise ... from``).

    vaultkit errors pass through; an exception ``mapper`` does not know (returns ``None``) is
    re-raised as it is. The AWS backend builds its ``aws_errors`` on this.
    """
    try:
        yield
    except VaultkitError:
        raise
    except Exception as exc:
        mapped = mapper(exc, source=source, reference=reference)
        if mapped is None:
            raise
        raise mapped from exc


__all__ = [
    "AccessDeniedError",
    "ArchiveError",
    "ArchivePasswordError",
    "AuthenticationError",
    "BackendError",
    "CAError",
    "CAKeyError",
    "CertificateRejectedError",
    "ConfigError",
    "CryptoError",
    "DeadlineExceededError",
    "DecryptionError",
    "InsecureFileError",
    "InvalidReferenceError",
    "KeyProviderError",
    "KeysetConflictError",
    "KeysetError",
    "NotFoundError",
    "ObjectExpiredError",
    "SecretsLoadError",
    "StorageError",
    "TLSError",
    "UnavailableError",
    "UnsafeEntryNameError",
    "VaultkitError",
    "converting",
]
