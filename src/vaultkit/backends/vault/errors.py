"""Vault's answers and transport failures as vaultkit errors, with server text made safe to show.

Two rules hold for every message built here:

* Server text (Vault's ``errors`` strings, a ``Location``, a TLS alert) goes through
  :func:`clean_text`: control characters (ANSI escapes, line breaks, bidi overrides)
  are removed, the client token and login secrets are cut out, and the length is capped.
* Exceptions that can carry the server's bytes (a bad status line, a partial body) are
  never chained as ``__cause__``: only their type name reaches the message.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from ...errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    TLSError,
    UnavailableError,
    VaultkitError,
)

#: The longest piece of server text a message quotes.
MAX_TEXT = 200


def clean_text(text: object, redact: Iterable[str | None] = (), limit: int = MAX_TEXT) -> str:
    """``text`` without control characters or any of ``redact``, at most ``limit`` characters.

    >>> clean_text("denied\\x1b[31m for hvs.abc\\n", redact=["hvs.abc"])
    'denied[31m for [redacted]'
    """
    s = "".join(ch for ch in str(text)
                if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs"))
    # Redacted after the control characters are gone, so "hvs.a\x1bbc" cannot slip through,
    # and in any case: a host name carrying it comes back lower-cased from urlsplit.
    for secret in redact:
        if secret and len(secret) >= 4:
            s = re.sub(re.escape(secret), "[redacted]", s, flags=re.IGNORECASE)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[:limit - 1] + "…"


class VaultProtocolError(UnavailableError):
    """Vault's answer was not well-formed HTTP/1.1 (framing, size, 1xx flood) or not JSON.

    An :class:`UnavailableError`: a broken answer is treated like a reset connection
    (the next address is tried, ``load_secrets`` retries with backoff).
    """

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("source", "vault")
        super().__init__(message, **kw)


class VaultHTTPError(Exception):
    """A non-2xx answer from Vault. Internal: :func:`map_exception` turns it into a vaultkit error.

    Carries Vault's ``errors`` strings (already cleaned by the client) and the status.
    """

    def __init__(self, status: int, errors: list[str], method: str = "", path: str = "") -> None:
        super().__init__(f"HTTP {status} for {method} {path}".strip())
        self.status = status
        self.errors = errors


# Vault's status codes (https://openbao.org/api-docs/#http-status-codes).
_STATUS: dict[int, tuple[type[VaultkitError], str]] = {
    400: (ConfigError, "invalid request"),
    401: (AuthenticationError, "unauthorized"),
    403: (AccessDeniedError, "permission denied"),
    404: (NotFoundError, "not found"),
    405: (ConfigError, "unsupported operation"),
    412: (UnavailableError, "precondition failed (a standby not yet caught up)"),
    429: (UnavailableError, "rate limited, or a standby"),
    500: (UnavailableError, "internal server error"),
    501: (UnavailableError, "not initialized"),
    502: (UnavailableError, "bad gateway"),
    503: (UnavailableError, "sealed, or in maintenance"),
}

# Filesystem errors are not network errors: let them through rather than call them "unreachable".
_NOT_NETWORK = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def from_status(status: int, errors: list[str], kw: dict[str, Any]) -> VaultkitError:
    """The vaultkit error for a non-2xx status and Vault's (cleaned) ``errors`` strings."""
    label = f"HTTP {status} {_STATUS.get(status, (None, 'error'))[1]}"
    detail = clean_text("; ".join(errors)) if errors else label
    if status == 400 and "non-versioned to versioned" in detail:
        # A KV v2 mount answers 400 for a few seconds while it (re)runs its upgrade check:
        # after it is enabled, and on a new raft leader after a fail-over ("Waiting for
        # the primary to upgrade..."). It says itself that service resumes shortly.
        return UnavailableError(f"{label}: {detail}", status=400, **kw)
    target, _ = _STATUS.get(status, (UnavailableError if status >= 500 else BackendError, ""))
    err = target(f"{label}: {detail}", status=status, **kw)
    if status == 501:
        err.retryable = False  # an uninitialised server stays so until an operator acts
    return err


def tls_hint(exc: BaseException) -> str:
    """Which setting fixes a TLS failure, from the OpenSSL reason."""
    text = str(exc).lower()
    if "hostname mismatch" in text or "doesn't match" in text or "not valid for" in text:
        return ("the certificate does not name this host: set BAO_TLS_SERVER_NAME/"
                "VAULT_TLS_SERVER_NAME ([vault] tls_server_name) or use the name it was issued for")
    if "certificate required" in text or "handshake failure" in text or "bad certificate" in text:
        return ("the server wants a client certificate: set BAO_CLIENT_CERT/VAULT_CLIENT_CERT "
                "and BAO_CLIENT_KEY/VAULT_CLIENT_KEY ([vault] client_cert, client_key)")
    if "verify failed" in text or "unknown ca" in text or "self-signed" in text or "self signed" in text:
        return ("the server's certificate is not trusted: set BAO_CACERT/VAULT_CACERT or "
                "BAO_CAPATH/VAULT_CAPATH ([vault] cacert, capath) to the CA that issued it")
    if "wrong version number" in text or "record layer failure" in text:
        return "the server does not speak TLS there: check the scheme of BAO_ADDR/VAULT_ADDR"
    return ("check BAO_CACERT/VAULT_CACERT, BAO_CLIENT_CERT/VAULT_CLIENT_CERT and "
            "BAO_TLS_SERVER_NAME/VAULT_TLS_SERVER_NAME")


def chain(exc: BaseException, depth: int = 6) -> Iterator[BaseException]:
    """``exc`` and what it wraps (an exception in its args, urllib3's ``reason``, the cause).

    urllib3 wraps the socket/ssl/http.client error it met (``ProtocolError("Connection
    aborted.", RemoteDisconnected(...))``, ``MaxRetryError(reason=...)``).
    """
    seen: BaseException | None = exc
    for _ in range(depth):
        if seen is None:
            return
        yield seen
        nested = next((a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)), None)
        reason = getattr(seen, "reason", None)
        seen = nested or (reason if isinstance(reason, BaseException) else None) or seen.__cause__


def _reason(exc: BaseException) -> str:
    """The type names down the chain, e.g. ``ProtocolError: RemoteDisconnected``."""
    names: list[str] = []
    for inner in chain(exc, 4):
        if type(inner).__name__ not in names:
            names.append(type(inner).__name__)
    return ": ".join(names)


def _ssl_error(exc: BaseException) -> BaseException | None:
    ssl = sys.modules.get("ssl")
    u3 = sys.modules.get("urllib3.exceptions")
    kinds = tuple(k for k in (getattr(ssl, "SSLError", None), getattr(u3, "SSLError", None))
                  if isinstance(k, type))
    return next((e for e in chain(exc) if kinds and isinstance(e, kinds)), None)


def map_exception(exc: BaseException, *, source: str = "vault", reference: str | None = None) -> (
    VaultkitError | None
):
    """The vaultkit error for a transport exception (urllib3, ssl, socket), or ``None``.

    >>> map_exception(VaultHTTPError(404, []))
    NotFoundError('HTTP 404 not found: HTTP 404 not found')
    """
    kw: dict[str, Any] = {"source": source, "reference": reference}
    if isinstance(exc, VaultkitError):  # VaultProtocolError, raised by the transport itself
        if exc.reference is None:
            exc.reference = reference
        return exc
    if isinstance(exc, VaultHTTPError):
        return from_status(exc.status, exc.errors, kw)
    name = _reason(exc)
    tls = _ssl_error(exc)
    if tls is not None:
        detail = clean_text(getattr(tls, "reason", None) or tls, limit=120)
        return TLSError(f"TLS failure talking to Vault ({detail}): {tls_hint(tls)}", **kw)
    u3 = sys.modules.get("urllib3.exceptions")  # an urllib3 exception implies it is imported
    if u3 is not None and isinstance(exc, u3.HTTPError):
        if isinstance(exc, u3.NewConnectionError):  # refused, DNS (a ConnectTimeoutError subclass!)
            return UnavailableError(f"Vault unreachable ({name})", **kw)
        if isinstance(exc, u3.TimeoutError):  # ConnectTimeoutError, ReadTimeoutError
            return DeadlineExceededError(f"Vault did not answer in time ({name})", **kw)
        if isinstance(exc, (u3.LocationValueError, u3.ProxySchemeUnknown)):
            return ConfigError(f"invalid Vault or proxy address ({name})", **kw)
        if isinstance(exc, u3.ProxyError):
            return UnavailableError(f"the HTTP(S) proxy failed or refused ({name})", **kw)
        if isinstance(exc, (u3.NewConnectionError, u3.ProtocolError, u3.DecodeError,
                            u3.ResponseError, u3.PoolError, u3.IncompleteRead)):
            return UnavailableError(f"Vault unreachable ({name})", **kw)
        return BackendError(f"Vault request failed ({name})", **kw)
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias
        return DeadlineExceededError(f"Vault did not answer in time ({name})", **kw)
    hc = sys.modules.get("http.client")
    if hc is not None and isinstance(exc, hc.InvalidURL):
        return ConfigError(f"invalid Vault address or request ({name})", **kw)
    if hc is not None and isinstance(exc, hc.HTTPException):  # BadStatusLine, IncompleteRead
        return UnavailableError(f"Vault unreachable ({name})", **kw)
    if isinstance(exc, OSError) and not isinstance(exc, _NOT_NETWORK):
        # refused, reset, broken pipe, DNS (socket.gaierror), unreachable network
        return UnavailableError(f"Vault unreachable ({name})", **kw)
    return None


__all__ = ["VaultHTTPError", "VaultProtocolError", "chain", "clean_text", "from_status",
           "map_exception", "tls_hint"]
