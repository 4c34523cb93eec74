"""mTLS ``ssl.SSLContext`` builders for services whose certificates come from ``vaultkit ca``.

Both sides: TLS 1.2 or later, ``CERT_REQUIRED``, this side's chain (leaf + intermediate)
loaded, the root as the only trust anchor, ``VERIFY_X509_STRICT`` (our certificates
follow RFC 5280, so strict parsing costs nothing and rejects malformed peers). The
client also checks the server's name (``check_hostname``).

>>> ctx = server_context("api.chain.pem", "api.key", ca="root.pem",
...                      crl=["crl/root.crl", "crl/intermediate.crl"])  # doctest: +SKIP
>>> ctx = client_context("worker.chain.pem", "worker.key", ca="root.pem")  # doctest: +SKIP

**Revocation across the chain.** When CRL files are given, the context sets
``VERIFY_CRL_CHECK_CHAIN``: OpenSSL checks the CRL of *every* CA in the peer's
chain, so a leaf of a revoked intermediate is refused because the root's CRL lists
the intermediate (``VERIFY_CRL_CHECK_LEAF`` would look only at the leaf's own CRL
and accept it). That needs a current CRL from each CA: building the context fails,
naming the CA, when the root or an intermediate of this side's chain has no CRL
among the files, or when its newest CRL is past ``nextUpdate`` (OpenSSL would
otherwise fail every handshake with "unable to get certificate CRL"). Pass both
tiers: ``HOME/crl/root.crl`` and ``HOME/crl/intermediate.crl``.

**Rotation without restarts.** :class:`ReloadingContext` watches the files and
builds a *new* context when they change; the old one is never mutated (CPython's
docs warn that changing certificates on a used context "may result in surprising
behavior", and nothing can be removed from its CRL store). A server hands out
the new material through an SNI callback on its base context, which OpenSSL calls
for every ClientHello, SNI or not; after ``sslobj.context = new`` the certificate,
key and trust store (CAs and CRLs) come from the new context, while the verify
mode and flags stay the base context's (research operations.md section 4), so every
context here is built with the same mode and flags. A client asks the holder for
:meth:`ReloadingContext.current` per connection. A new file that is bad (a key
that is not the certificate's, an expired or unparsable certificate, a missing
CRL) keeps the last good material and logs why on ``vaultkit.tls``;
:func:`https_server` is a ready server that uses it.

**No session resumption on servers.** A resumed TLS session is not verified again:
a client revoked after its first connection could resume with its session ticket
and never meet the new CRL. Server contexts therefore issue no tickets
(``OP_NO_TICKET``, ``num_tickets = 0``); every connection is a full handshake, which
is what makes revocation take effect on the next connection.

OpenSSL applies the purpose for you: a server context accepts only client
certificates with clientAuth, a client context only servers with serverAuth.

TLS 1.3 caveat (research B3): a client's handshake completes *before* the server
has judged the client certificate; a rejection shows on the first read as
``SSLError``/``SSLEOFError``. Read a response before trusting the connection.
"""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509

from .errors import ConfigError, TLSError, VaultkitError
from .secret import Secret

StrPath = str | os.PathLike[str]
Password = Secret[str] | Secret[bytes] | None

log = logging.getLogger("vaultkit.tls")

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def _paths(value: StrPath | Sequence[StrPath] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file not found", reference=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", reference=path) from exc


def _certificates(data: bytes, what: str, path: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TLSError(f"the {what} is not a PEM certificate", source="tls",
                       reference=path) from exc
    return certs


def _crls(data: bytes, path: str) -> list[x509.CertificateRevocationList]:
    try:
        blocks = _PEM_CRL.findall(data)
        if blocks:
            return [x509.load_pem_x509_crl(b) for b in blocks]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise TLSError("not a PEM or DER CRL", source="tls", reference=path) from exc


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_leaf(chain: list[x509.Certificate], path: str, now: dt.datetime) -> None:
    if not chain:
        raise TLSError("the certificate file holds no certificate", source="tls", reference=path)
    leaf = chain[0]
    if now > leaf.not_valid_after_utc:
        raise TLSError(f"the certificate {_name(leaf)} expired at "
                       f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M}Z", source="tls",
                       reference=path)
    if now < leaf.not_valid_before_utc:
        raise TLSError(f"the certificate {_name(leaf)} is not valid before "
                       f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M}Z", source="tls",
                       reference=path)


def _check_crl_coverage(cas: list[x509.Certificate],
                        crls: list[tuple[str, x509.CertificateRevocationList]],
                        now: dt.datetime) -> None:
    """Every CA that can appear in a chain here needs a current CRL (VERIFY_CRL_CHECK_CHAIN)."""
    for ca in cas:
        own = [(path, c) for path, c in crls
               if c.issuer == ca.subject and c.is_signature_valid(ca.public_key())]  # type: ignore[arg-type]
        if not own:
            raise ConfigError(f"CRL checking covers the whole chain, but no CRL from {_name(ca)} "
                              "is loaded; add its CRL file (for a vaultkit CA: HOME/crl/root.crl "
                              "and HOME/crl/intermediate.crl)")
        path, newest = max(own, key=lambda pc: pc[1].last_update_utc)
        next_update = newest.next_update_utc
        if next_update is not None and next_update < now:
            raise ConfigError(f"the CRL from {_name(ca)} expired at {next_update:%Y-%m-%d %H:%M}Z; "
                              "re-sign it (vaultkit ca crl)", reference=path)


def _build(server: bool, cert: str, key: str, ca: str, crls: list[str], password: Password,
           minimum_version: ssl.TLSVersion) -> ssl.SSLContext:
    if minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ConfigError("mTLS contexts require TLS 1.2 or later")
    now = dt.datetime.now(dt.timezone.utc)
    chain = _certificates(_read(cert, "certificate chain"), "certificate chain", cert)
    _check_leaf(chain, cert, now)
    anchors = _certificates(_read(ca, "CA certificate"), "CA certificate", ca)
    if crls:
        loaded = [(p, c) for p in crls for c in _crls(_read(p, "CRL"), p)]
        _check_crl_coverage([*anchors, *chain[1:]], loaded, now)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = minimum_version
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if crls:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if server:
        # No session resumption: a resumed session skips the certificate and CRL checks,
        # so a revoked client could go on resuming (for up to the ticket's lifetime) after
        # the new CRL is loaded. Python's server contexts keep no session-ID cache, so with
        # no tickets every connection is a full handshake.
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    else:
        ctx.check_hostname = True
    what = "certificate chain"
    try:
        ctx.load_cert_chain(cert, key, password=(lambda: password.reveal()) if password else None)
        what = "CA certificate"
        ctx.load_verify_locations(cafile=ca)
        what = "CRL"
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
    return ctx


def server_context(
    cert: StrPath,
    key: StrPath,
    *,
    ca: StrPath,
    crl: StrPath | Sequence[StrPath] | None = None,
    password: Password = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A server context that requires and verifies a client certificate.

    ``cert`` is the chain file (``NAME.chain.pem``: leaf then intermediate), ``ca``
    the root certificate, ``crl`` the PEM CRLs of every CA tier
    (``HOME/crl/root.crl`` and ``HOME/crl/intermediate.crl``).
    """
    return _build(True, os.fspath(cert), os.fspath(key), os.fspath(ca), _paths(crl), password,
                  minimum_version)


def client_context(
    cert: StrPath,
    key: StrPath,
    *,
    ca: StrPath,
    crl: StrPath | Sequence[StrPath] | None = None,
    password: Password = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A client context that presents a certificate and verifies the server and its name."""
    return _build(False, os.fspath(cert), os.fspath(key), os.fspath(ca), _paths(crl), password,
                  minimum_version)


# --- rotation without restarts ----------------------------------------------------------


class ReloadingContext:
    """mTLS material that follows its files: new connections get new certificates and CRLs.

    >>> tls = ReloadingContext("server", "api.chain.pem", "api.key", ca="root.pem",
    ...                        crl=["root.crl", "intermediate.crl"])  # doctest: +SKIP
    >>> listener = tls.context.wrap_socket(sock, server_side=True)  # doctest: +SKIP

    The files are looked at (``stat`` only) at most every ``interval`` seconds, when a
    connection needs a context; a change builds a new context. The first build must
    succeed (it raises like :func:`server_context`); after that a failure is logged
    once per set of files and the last good context stays in use.
    """

    def __init__(self, side: str, cert: StrPath, key: StrPath, *, ca: StrPath,
                 crl: StrPath | Sequence[StrPath] | None = None, password: Password = None,
                 minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                 interval: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        if side not in ("server", "client"):
            raise ConfigError("side must be 'server' or 'client'")
        self.side = side
        self._cert, self._key, self._ca = os.fspath(cert), os.fspath(key), os.fspath(ca)
        self._crls = _paths(crl)
        self._files = (self._cert, self._key, self._ca, *self._crls)
        self._password = password
        self._minimum_version = minimum_version
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._version = self._stat()
        self._current = self._build_stable()
        self._failed: tuple[Any, ...] | None = None
        self._next_check = clock() + interval
        #: The context to wrap sockets with: for a server, the base whose SNI callback
        #: hands out the newest material; for a client, the newest context at the time.
        self._base = self._current
        if side == "server":
            self._base.sni_callback = self._on_client_hello

    def __repr__(self) -> str:
        return f"ReloadingContext(side={self.side!r}, cert={self._files[0]!r})"

    @property
    def context(self) -> ssl.SSLContext:
        """Server: the base context (install once). Client: :meth:`current`."""
        return self._base if self.side == "server" else self.current()

    def current(self) -> ssl.SSLContext:
        """The newest good context, after checking the files if ``interval`` has passed."""
        if self._clock() >= self._next_check and self._lock.acquire(blocking=False):
            try:
                self._next_check = self._clock() + self.interval
                self._maybe_reload()
            finally:
                self._lock.release()
        return self._current

    def reload(self) -> bool:
        """Check the files now, whatever the interval, and retry files that failed before
        (for a SIGHUP handler); True when a new context is in use."""
        with self._lock:
            return self._maybe_reload(retry=True)

    def _stat(self) -> tuple[Any, ...]:
        out: list[tuple[Any, ...]] = []
        for path in self._files:
            try:
                st = os.stat(path)
            except OSError:
                out.append((path, None))
                continue
            out.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _build_stable(self) -> ssl.SSLContext:
        """Build from the files, and retry if they changed while being read (a renewal
        writes the key and the certificate one after the other)."""
        for _ in range(3):
            before = self._stat()
            ctx = _build(self.side == "server", self._cert, self._key, self._ca, self._crls,
                         self._password, self._minimum_version)
            after = self._stat()
            if before == after:
                self._version = after
                return ctx
        raise TLSError("the files keep changing while being loaded", source="tls",
                       reference=self._files[0])

    def _maybe_reload(self, retry: bool = False) -> bool:
        version = self._stat()
        if version == self._version:
            return False
        if version == self._failed and not retry:
            return False  # already logged; wait for the next change
        try:
            ctx = self._build_stable()
        except VaultkitError as exc:
            self._failed = version
            log.warning("TLS material in %s not reloaded, keeping the previous certificate, "
                        "key and CRLs: %s", self._files[0], exc)
            return False
        self._failed = None
        self._current = ctx
        log.info("TLS material reloaded from %s", self._files[0])
        return True

    def _on_client_hello(self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                         base: ssl.SSLContext) -> None:
        try:
            ctx = self.current()
        except Exception:  # never fail a handshake because a check failed, and never fall
            log.exception("TLS reload check failed")  # back to the base's older CRLs
            ctx = self._current
        if ctx is not base:
            # Only the certificate, key and trust store come from ``ctx``; the verify mode
            # and flags stay the base's, which were built identically.
            sslobj.context = ctx


class MTLSServer(http.server.ThreadingHTTPServer):
    """An HTTPS server that requires client certificates and follows renewed files.

    The TLS handshake runs in the request's own thread (not in ``accept``), with a
    timeout, so a slow or hostile client cannot stall the listener. A refused
    handshake is logged at INFO on ``vaultkit.tls`` and the connection closed.
    ``handler.connection`` is the ``ssl.SSLSocket``: ``getpeercert()`` gives the
    client's certificate.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int],
                 handler: type[http.server.BaseHTTPRequestHandler], tls: ReloadingContext,
                 *, handshake_timeout: float = 10.0) -> None:
        if tls.side != "server":
            raise ConfigError("MTLSServer needs a server-side ReloadingContext")
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.handshake_timeout)
        try:
            conn = self.tls.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake from %s refused: %s", client_address[0], exc)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def https_server(address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler],
                 cert: StrPath, key: StrPath, *, ca: StrPath,
                 crl: StrPath | Sequence[StrPath] | None = None, password: Password = None,
                 interval: float = 2.0) -> MTLSServer:
    """An mTLS HTTPS server on ``address`` whose certificate and CRLs reload from the files.

    >>> srv = https_server(("127.0.0.1", 8443), Handler, "api.chain.pem", "api.key",
    ...                    ca="root.pem", crl=["root.crl", "intermediate.crl"])  # doctest: +SKIP
    >>> srv.serve_forever()  # doctest: +SKIP
    """
    tls = ReloadingContext("server", cert, key, ca=ca, crl=crl, password=password,
                           interval=interval)
    return MTLSServer(address, handler, tls)


__all__ = [
    "MTLSServer",
    "ReloadingContext",
    "client_context",
    "https_server",
    "server_context",
]
