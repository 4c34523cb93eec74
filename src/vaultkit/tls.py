"""mTLS ``ssl.SSLContext`` builders for services whose certificates come from ``vaultkit ca``.

Both sides: TLS 1.2 or later, ``CERT_REQUIRED``, this side's chain (leaf + intermediate)
loaded, the root as the only trust anchor, ``VERIFY_X509_STRICT`` (our certificates
follow RFC 5280, so strict parsing costs nothing and rejects malformed peers), and, when
CRL files are given, ``VERIFY_CRL_CHECK_LEAF`` so a revoked peer is refused during the
handshake. The client also checks the server's name (``check_hostname``).

>>> ctx = server_context("api.chain.pem", "api.key", ca="root.pem",
...                      crl="crl/intermediate.crl")  # doctest: +SKIP
>>> ctx = client_context("worker.chain.pem", "worker.key", ca="root.pem")  # doctest: +SKIP

OpenSSL applies the purpose for you: a server context accepts only client
certificates with clientAuth, a client context only servers with serverAuth.

TLS 1.3 caveat (research B3): a client's handshake completes *before* the server
has judged the client certificate; a rejection shows on the first read as
``SSLError``/``SSLEOFError``. Read a response before trusting the connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence

from .errors import ConfigError, TLSError
from .secret import Secret

StrPath = str | os.PathLike[str]


def _paths(value: StrPath | Sequence[StrPath] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _build(
    purpose: ssl.Purpose,
    cert: StrPath,
    key: StrPath,
    ca: StrPath,
    crl: StrPath | Sequence[StrPath] | None,
    password: Secret[str] | Secret[bytes] | None,
    minimum_version: ssl.TLSVersion,
) -> ssl.SSLContext:
    if minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ConfigError("mTLS contexts require TLS 1.2 or later")
    protocol = (ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH
                else ssl.PROTOCOL_TLS_CLIENT)
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = minimum_version
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    what = "certificate chain"
    try:
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key),
                            password=(lambda: password.reveal()) if password else None)
        what = "CA certificate"
        ctx.load_verify_locations(cafile=os.fspath(ca))
        what = "CRL"
        crls = _paths(crl)
        for path in crls:
            # A PEM CRL loads through the CA file API into the same X509_STORE.
            ctx.load_verify_locations(cafile=path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file not found", reference=exc.filename) from exc
    except ssl.SSLError as exc:
        # OpenSSL's reason (e.g. "KEY_VALUES_MISMATCH", "bad decrypt") names no secret.
        raise TLSError(f"cannot load {what}: {exc.reason or exc}", source="tls") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", reference=exc.filename) from exc
    if crls:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def server_context(
    cert: StrPath,
    key: StrPath,
    *,
    ca: StrPath,
    crl: StrPath | Sequence[StrPath] | None = None,
    password: Secret[str] | Secret[bytes] | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A server context that requires and verifies a client certificate.

    ``cert`` is the chain file (``NAME.chain.pem``: leaf then intermediate), ``ca``
    the root certificate, ``crl`` one or more PEM CRLs (``HOME/crl/intermediate.crl``).
    """
    return _build(ssl.Purpose.CLIENT_AUTH, cert, key, ca, crl, password, minimum_version)


def client_context(
    cert: StrPath,
    key: StrPath,
    *,
    ca: StrPath,
    crl: StrPath | Sequence[StrPath] | None = None,
    password: Secret[str] | Secret[bytes] | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A client context that presents a certificate and verifies the server and its name."""
    ctx = _build(ssl.Purpose.SERVER_AUTH, cert, key, ca, crl, password, minimum_version)
    ctx.check_hostname = True
    return ctx


__all__ = ["client_context", "server_context"]
