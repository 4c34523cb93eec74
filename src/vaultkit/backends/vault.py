"""The one way vaultkit reaches Vault/OpenBao: :class:`VaultClient` and its auth chain.

Vault's HTTP API is spoken here and nowhere else: callers get plain dicts back
and vaultkit errors out, never transport types or exceptions. The transport is
a small HTTP/1.1 client on a keep-alive socket pool (see "the transport" below
for why not hvac + requests).

Auth chain (first method whose credentials are present wins, unless
``[vault] auth`` names one):

1. ``token``: ``VAULT_TOKEN``/``BAO_TOKEN`` or ``[vault] token`` from the environment;
2. ``token_file``: ``[vault] token_file``, else ``~/.vault-token`` (must be 0600);
3. ``approle``: ``role_id`` plus a secret id from ``secret_id_file`` or ``$VAULT_APPROLE_SECRET_ID``;
4. ``kubernetes``: the service-account JWT file plus ``role``;
5. ``jwt``: ``jwt_file`` plus ``role`` (JWT/OIDC auth method);
6. ``aws``: an IAM login signed with the boto3 credential chain, plus ``role``.

Several addresses (``addr = ["https://a:8200", "https://b:8200"]``) are tried
in turn: a connection failure, a 429/500/503 (sealed, a standby during a
leader election, a standby without request forwarding) moves to the next
address and the call is repeated there; the address that answered becomes
the first one tried next time. A 307 redirect from a standby to the active
node is followed (the method and body are kept for 307/308).
A whole round of unavailable addresses raises :class:`UnavailableError`,
which ``load_secrets`` retries with backoff until the new leader is up.

KV v1/v2 detection: :meth:`VaultClient.mount_info` asks
``sys/internal/ui/mounts/<path>`` (the endpoint the Vault UI and CLI use; any
token with a capability on the path may call it) and caches the answer per mount.

Token expiry: when a call is refused with 403 and the client logged in with a
method it can repeat (AppRole, JWT, Kubernetes, AWS, token file), it logs in
again once and repeats the call (:meth:`VaultClient.request`).
"""

from __future__ import annotations

import contextlib
import errno
import json as _json
import os
import select
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from ..config import Config, VaultSettings
from ..errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    TLSError,
    UnavailableError,
    VaultkitError,
    converting,
)
from ..files import check_private_file

if TYPE_CHECKING:
    import ssl

T = TypeVar("T")


@dataclass(frozen=True)
class MountInfo:
    """A secrets engine mount: its path (no slashes around it), type, and KV version (0 if not KV)."""

    path: str
    type: str
    kv_version: int

AUTH_METHODS = ("token", "token_file", "approle", "kubernetes", "jwt", "aws")
DEFAULT_ADDR = "http://127.0.0.1:8200"


# --- error mapping -----------------------------------------------------------------

# Vault's status codes (https://openbao.org/api-docs/#http-status-codes); hvac names them the same.
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


def _from_status(status: int, errors: list[str], name: str, kw: dict[str, Any]) -> VaultkitError:
    # Vault's error strings name paths and reasons, never values.
    detail = "; ".join(str(e) for e in errors)[:200] if errors else name
    if status == 400 and "non-versioned to versioned" in detail:
        # A KV v2 mount answers 400 for a few seconds while it (re)runs its upgrade check:
        # after it is enabled, and on a new raft leader after a fail-over ("Waiting for
        # the primary to upgrade..."). It says itself that service resumes shortly.
        return UnavailableError(f"{name}: {detail}", status=400, **kw)
    target, _ = _STATUS.get(status, (UnavailableError if status >= 500 else BackendError, ""))
    err = target(f"{name}: {detail}", status=status, **kw)
    if status == 501:
        err.retryable = False  # an uninitialised server stays so until an operator acts
    return err


def map_exception(exc: BaseException, *, source: str = "vault", reference: str | None = None) -> (
    VaultkitError | None
):
    """The vaultkit error for a transport (or hvac/requests) exception, or ``None`` if none fits.

    >>> map_exception(VaultHTTPError(404, []))
    NotFoundError('HTTP 404 not found: HTTP 404 not found')
    """
    kw: dict[str, Any] = {"source": source, "reference": reference}
    name = type(exc).__name__
    if isinstance(exc, VaultHTTPError):
        label = f"HTTP {exc.status} {_STATUS.get(exc.status, (None, 'error'))[1]}"
        return _from_status(exc.status, exc.errors, label, kw)
    # hvac and requests are no longer on vaultkit's path, but their exceptions are still
    # mapped for callers that use them around vaultkit; an exception of theirs implies
    # the module is imported, so look there instead of importing them here.
    hx = sys.modules.get("hvac.exceptions")
    if hx is not None and isinstance(exc, hx.VaultError):
        table = ((hx.InvalidRequest, 400), (hx.Unauthorized, 401), (hx.Forbidden, 403),
                 (hx.InvalidPath, 404), (hx.UnsupportedOperation, 405),
                 (hx.PreconditionFailed, 412), (hx.RateLimitExceeded, 429),
                 (hx.InternalServerError, 500), (hx.VaultNotInitialized, 501),
                 (hx.BadGateway, 502), (hx.VaultDown, 503))
        status = next((code for cls, code in table if isinstance(exc, cls)), None)
        if status is not None:
            return _from_status(status, list(exc.errors or []), name, kw)
        detail = "; ".join(str(e) for e in (exc.errors or []))[:200] if exc.errors else name
        if isinstance(exc, hx.ParamValidationError):
            return ConfigError(f"{name}: {detail}", **kw)
        return BackendError(f"{name}: {detail}", **kw)
    rx = sys.modules.get("requests.exceptions")
    if rx is not None and isinstance(exc, rx.RequestException):
        if isinstance(exc, rx.SSLError):
            return TLSError(f"TLS failure talking to Vault ({name})", **kw)
        if isinstance(exc, rx.Timeout):  # ConnectTimeout, ReadTimeout
            return DeadlineExceededError(f"Vault did not answer in time ({name})", **kw)
        if isinstance(exc, (rx.InvalidURL, rx.MissingSchema, rx.InvalidSchema, rx.URLRequired,
                            rx.InvalidHeader, rx.InvalidProxyURL)):
            return ConfigError(f"invalid Vault address or request ({name})", **kw)
        if isinstance(exc, (rx.ConnectionError, rx.ChunkedEncodingError,
                            rx.ContentDecodingError, rx.RetryError)):
            return UnavailableError(f"Vault unreachable ({name})", **kw)
        return BackendError(f"Vault request failed ({name})", **kw)
    # The transport's own failures: ssl (imported only for https), socket, VaultProtocolError.
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):  # and certificate verification
        return TLSError(f"TLS failure talking to Vault ({name})", **kw)
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias
        return DeadlineExceededError(f"Vault did not answer in time ({name})", **kw)
    hc = sys.modules.get("http.client")  # for callers using http.client/urllib around vaultkit
    if hc is not None and isinstance(exc, hc.InvalidURL):
        return ConfigError(f"invalid Vault address or request ({name})", **kw)
    if hc is not None and isinstance(exc, hc.HTTPException):  # BadStatusLine, IncompleteRead
        return UnavailableError(f"Vault unreachable ({name})", **kw)
    if isinstance(exc, OSError) and not isinstance(exc, _NOT_NETWORK):
        # refused, reset, broken pipe, DNS (socket.gaierror), unreachable network
        return UnavailableError(f"Vault unreachable ({name})", **kw)
    return None


@contextlib.contextmanager
def vault_errors(source: str = "vault", *, reference: str | None = None) -> Iterator[None]:
    """Convert transport (and hvac/requests) exceptions raised in the block into vaultkit errors."""
    with converting(map_exception, source, reference):
        yield


# --- the transport -----------------------------------------------------------------
#
# Why not hvac + requests on the hot path: a KV read through them costs ~0.9 ms of
# client CPU under the GIL (hooks, cookie jar, proxy/env merging per request, header
# dict merging, hvac's adapter), about twice what OpenBao itself spends serving it
# (~0.5 ms), so load_secrets' threads could not overlap anything on a fast network.
# Vault's API is plain JSON over HTTP/1.1: a small client on a keep-alive socket
# pool does it in ~0.1 ms. hvac remains only as the tests' and benchmark's baseline.

_SAFE_PATH = "!$&'()*+,/:;=@[]~%"  # requests' requote_uri keeps these (and unreserved) as-is


class VaultHTTPError(Exception):
    """A non-2xx answer from Vault. Internal: :func:`map_exception` turns it into a vaultkit error.

    Carries Vault's ``errors`` strings (paths and reasons, never values) and the status.
    """

    def __init__(self, status: int, errors: list[str], method: str = "", path: str = "") -> None:
        super().__init__(f"HTTP {status} for {method} {path}".strip())
        self.status = status
        self.errors = errors


def _ssl_context(s: VaultSettings) -> ssl.SSLContext:
    """The TLS settings hvac/requests had: ``cacert`` (file or directory), ``tls_verify``, client pair."""
    import ssl

    try:
        if s.cacert:
            ctx = ssl.create_default_context(
                cafile=None if os.path.isdir(s.cacert) else s.cacert,
                capath=s.cacert if os.path.isdir(s.cacert) else None)
        elif s.tls_verify:
            ctx = ssl.create_default_context()  # the system store, like the vault/bao CLI ...
            with contextlib.suppress(ImportError):
                import certifi  # ... plus requests' bundle, so nothing trusted before is lost

                ctx.load_verify_locations(cafile=certifi.where())
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.client_cert:
            if not s.client_key:
                raise ConfigError("vault.client_cert needs vault.client_key")
            check_private_file(s.client_key)
            ctx.load_cert_chain(s.client_cert, s.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the Vault TLS files ({type(exc).__name__})",
                          source="vault") from exc
    return ctx


def _env_proxy(scheme: str, host: str) -> str | None:
    """The ``HTTP(S)_PROXY`` requests would have used for this address (it honours the env)."""
    if not any(k.lower().endswith("_proxy") for k in os.environ):
        return None  # the common case, without importing urllib.request
    import urllib.request

    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies_environment().get(scheme)


class VaultProtocolError(ConnectionError):
    """Vault's answer was not well-formed HTTP/1.1, or the connection closed mid-answer.

    A :class:`ConnectionError`, so it maps (like a reset) to :class:`UnavailableError`.
    """


class _Disconnected(VaultProtocolError):
    """The server closed the connection before the status line: on a reused one, a stale keep-alive."""


_MAX_LINE = 65536  # like http.client: a longer status/header line is a broken or hostile peer
_MAX_HEADERS = 100
# Vault refuses requests over 32 MiB (max_request_size); an answer past 64 MiB is a broken peer.
_MAX_BODY = 64 * 1024 * 1024


class _Conn:
    """One HTTP/1.1 connection: the socket and its buffered reader."""

    __slots__ = ("_rfile", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # Made on first blocking use: a batch's connections never need one (and a boot
        # hands back up to 16 of them).
        self._rfile: Any = None

    @property
    def rfile(self) -> Any:
        if self._rfile is None:
            self._rfile = self.sock.makefile("rb")
        return self._rfile

    def close(self) -> None:
        if self._rfile is not None:
            with contextlib.suppress(OSError):
                self._rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def dropped(self) -> bool:
        """An idle keep-alive socket that is readable was closed (or spoke out of turn)."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


def _readline(rfile: Any) -> bytes:
    line: bytes = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise VaultProtocolError("HTTP line too long")
    return line


def _read_headers(rfile: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        line = _readline(rfile)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise VaultProtocolError("connection closed in the response headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise VaultProtocolError("malformed HTTP header line")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise VaultProtocolError("too many HTTP headers")


def _read_exact(rfile: Any, n: int) -> bytes:
    if n > _MAX_BODY:
        raise VaultProtocolError("HTTP body too large")
    data: bytes = rfile.read(n)
    if len(data) != n:
        raise VaultProtocolError("connection closed in the response body")
    return data


def _read_response(rfile: Any, method: str) -> tuple[int, dict[str, str], bytes, bool]:
    """``(status, headers, body, reusable)`` for one response (RFC 9112 sections 4, 6, 7.1)."""
    while True:
        line = _readline(rfile)
        if not line:
            raise _Disconnected("the server closed the connection without answering")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise VaultProtocolError("malformed HTTP status line")
        status = int(code)
        headers = _read_headers(rfile)
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100 Continue) are skipped
    reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (101, 204, 304):
        return status, headers, b"", reusable
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = _readline(rfile).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise VaultProtocolError("malformed chunk size") from None
            if size == 0:
                _read_headers(rfile)  # trailers, ignored
                return status, headers, b"".join(parts), reusable
            total += size
            parts.append(_read_exact(rfile, size if total <= _MAX_BODY else _MAX_BODY + 1))
            _read_exact(rfile, 2)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise VaultProtocolError("malformed Content-Length")
        return status, headers, _read_exact(rfile, int(length)), reusable
    body: bytes = rfile.read(_MAX_BODY + 1)  # delimited by the close
    if len(body) > _MAX_BODY:
        raise VaultProtocolError("HTTP body too large")
    return status, headers, body, False


class _NeedMore(Exception):
    """The buffer holds only part of the response: wait for more bytes."""


class _BufferReader:
    """``readline``/``read`` over bytes received so far, so :func:`_read_response` (written for
    a blocking file) also parses answers arriving on non-blocking sockets (:meth:`_Transport.multiplex`).

    Same semantics as a buffered file, with one difference: where a file would block,
    this raises :class:`_NeedMore` (unless the peer has closed: then short reads, as a file
    would return at EOF). ``need`` is how many bytes must be present before a new attempt
    can get further, so a large body is not re-parsed on every segment.
    """

    __slots__ = ("buf", "eof", "need", "pos")

    def __init__(self, buf: bytes | bytearray, eof: bool) -> None:
        self.buf, self.eof, self.pos, self.need = buf, eof, 0, 0

    def readline(self, limit: int) -> bytes:
        end = self.buf.find(b"\n", self.pos, self.pos + limit)
        if end < 0:
            if len(self.buf) - self.pos < limit and not self.eof:
                self.need = len(self.buf) + 1
                raise _NeedMore
            end = min(len(self.buf), self.pos + limit) - 1
        line = bytes(self.buf[self.pos:end + 1])
        self.pos = end + 1
        return line

    def read(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n and not self.eof:
            self.need = self.pos + n
            raise _NeedMore
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += len(data)
        return data


def _check_header(value: str) -> str:
    # A token or namespace read from a file with a line break in it must not smuggle headers.
    if "\r" in value or "\n" in value:
        raise ConfigError("a Vault header value contains a line break", source="vault")
    return value


class _Transport:
    """A thread-safe keep-alive pool of HTTP/1.1 connections to one Vault address.

    Vault's API is plain JSON over HTTP/1.1 with a Content-Length or chunked body,
    so a small client on sockets is enough; it also keeps ``http.client`` (and the
    ``email`` package it parses headers with, ~20 ms to import) out of a cold start.
    """

    def __init__(self, address: str, *, ssl_context: Callable[[], ssl.SSLContext],
                 maxsize: int = 32) -> None:
        u = urlsplit(address)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError("invalid Vault address (expected http(s)://host[:port])",
                              reference=address, source="vault")
        try:
            port = u.port or (443 if u.scheme == "https" else 80)
        except ValueError as exc:
            raise ConfigError("invalid Vault address port", reference=address,
                              source="vault") from exc
        self.scheme, self.host, self.port = u.scheme, u.hostname, port
        host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
        self.authority = host if port == (443 if u.scheme == "https" else 80) else f"{host}:{port}"
        self.prefix = u.path.rstrip("/")
        self._ssl_context = ssl_context
        self._maxsize = maxsize
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._proxy = _env_proxy(u.scheme, u.hostname)

    def _connect(self, timeout: float) -> _Conn:
        target = (self.host, self.port)
        proxy = urlsplit(self._proxy if "://" in (self._proxy or "") else
                         f"http://{self._proxy}") if self._proxy else None
        addr = (proxy.hostname or "", proxy.port or 80) if proxy else target
        sock = socket.create_connection(addr, timeout=timeout)
        try:
            # Requests go out in one send, but a small answer must not wait for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if proxy is not None:
                    self._tunnel(sock, proxy)
                sock = self._ssl_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Conn(sock)

    def _tunnel(self, sock: socket.socket, proxy: Any) -> None:
        """``CONNECT`` through an HTTPS_PROXY (RFC 9110 section 9.3.6), as requests does."""
        head = (f"CONNECT {self.authority} HTTP/1.1\r\nHost: {self.authority}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in _proxy_auth(proxy).items()) + "\r\n")
        sock.sendall(head.encode("latin-1"))
        rfile = sock.makefile("rb")
        try:
            line = _readline(rfile)
            if line.split(b" ", 2)[1:2] != [b"200"]:
                raise VaultProtocolError("the HTTPS proxy refused the CONNECT")
            _read_headers(rfile)
        finally:
            rfile.close()

    def _checkout(self, timeout: float) -> tuple[_Conn, bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.dropped():
                    conn.close()
                    continue
                conn.sock.settimeout(timeout)
                return conn, True
        return self._connect(timeout), False

    def take_idle(self) -> _Conn | None:
        """A kept-alive connection that still looks open, or ``None``."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.dropped():
                    return conn
                conn.close()
        return None

    def give_back(self, conn: _Conn) -> None:
        self._checkin(conn)

    def multiplex(self, wires: Sequence[bytes], *, deadline: float, timeout: float,
                  connections: int, warm: int = 0
                  ) -> list[tuple[int, bytes, str | None] | BaseException] | None:
        """Send GETs over up to ``connections`` connections from one thread (see below).

        ``None`` when this transport cannot (through a proxy): use :meth:`request`.
        """
        if self._proxy:
            return None
        return _Multiplexer(self, wires, deadline=deadline, timeout=timeout,
                            connections=connections, warm=warm).run()

    def _checkin(self, conn: _Conn) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def wire(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        """The request as bytes on the wire (raises ConfigError for header injection)."""
        url = self.prefix + target
        lines = [f"Host: {self.authority}", "Accept-Encoding: identity"]
        if self._proxy and self.scheme == "http":
            url = f"http://{self.authority}{url}"  # absolute-form for a forward proxy
            proxy = urlsplit(self._proxy if "://" in self._proxy else f"http://{self._proxy}")
            lines += [f"{k}: {v}" for k, v in _proxy_auth(proxy).items()]
        if any(c in url for c in " \r\n\t"):
            raise ConfigError("the Vault request path contains whitespace", source="vault")
        lines += [f"{k}: {_check_header(v)}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        wire = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in lines) + "\r\n"
        return wire.encode("latin-1") + (body or b"")

    def get_wires(self, targets: Sequence[str], headers: dict[str, str]) -> list[bytes]:
        """:meth:`wire` for many GETs sharing ``headers`` (the header block is built once)."""
        if self._proxy and self.scheme == "http":
            return [self.wire("GET", t, None, headers) for t in targets]
        tail = self.wire("GET", "/", None, headers).split(b"\r\n", 1)[1]
        out = []
        for target in targets:
            url = self.prefix + target
            if any(c in url for c in " \r\n\t"):
                raise ConfigError("the Vault request path contains whitespace", source="vault")
            out.append(f"GET {url} HTTP/1.1\r\n".encode("latin-1") + tail)
        return out

    def request(self, method: str, target: str, body: bytes | None, headers: dict[str, str],
                timeout: float) -> tuple[int, bytes, str | None]:
        """``(status, body, Location)``. Raises OSError/ssl errors and VaultProtocolError."""
        data = self.wire(method, target, body, headers)
        for attempt in (0, 1):
            conn, reused = self._checkout(timeout)
            try:
                conn.sock.sendall(data)
                status, resp_headers, payload, reusable = _read_response(conn.rfile, method)
            except (_Disconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                # A keep-alive connection the server closed while idle: repeat a read once
                # on a fresh one (a write might have been applied, so it is not repeated).
                if reused and attempt == 0 and method in ("GET", "HEAD"):
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if reusable:
                self._checkin(conn)
            else:
                conn.close()
            return status, payload, resp_headers.get("location")
        raise AssertionError("unreachable")  # pragma: no cover


# --- the multiplexed batch -----------------------------------------------------------
#
# Why one thread and selectors, not a thread per read: a boot's KV reads cost OpenBao
# ~0.3-0.5 ms of CPU each and this client ~0.1 ms; on a 2-core machine, 16 threads
# passing the GIL around (and waking each other) cost more than the reads. One thread
# keeping one request in flight on each of N keep-alive connections never contends.
# Why not HTTP pipelining (several requests queued on one connection): RFC 9112
# section 9.3.2 allows it, but a proxy or load balancer in front of Vault may not
# support it, a failure leaves it unclear which queued requests ran, and answers come
# back strictly in order, so one slow read stalls the rest. One outstanding request
# per connection is what every HTTP/1.1 server and intermediary supports.

_Answer = tuple[int, bytes, "str | None"]

# The head of a common answer (status >= 200, Content-Length, CRLF lines) fits in this;
# anything else goes through _read_response, which handles every case.
_QUICK_HEAD = 16384


def _quick_response(buf: bytes | bytearray) -> tuple[int, dict[str, str], int, int, bool] | int | None:
    """Parse the common answer in one pass: ``(status, headers, body_start, body_end, reusable)``.

    An ``int`` is how many bytes must have arrived before the answer is complete; ``None``
    means "not the common case" (no blank line yet, 1xx, chunked, no Content-Length, bare
    LF or CR, too many headers): :func:`_read_response` then parses it (or raises). The
    result is the same as :func:`_read_response`'s for every answer this accepts.
    """
    end = buf.find(b"\r\n\r\n", 0, _QUICK_HEAD)
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    if (len(lines) > _MAX_HEADERS + 1 or head.count("\n") != len(lines) - 1
            or head.count("\r") != len(lines) - 1):
        return None
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        return None
    status = int(code)
    if status < 200 or status in (204, 304):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    length = headers.get("content-length")
    if length is None or not length.isdigit() or "transfer-encoding" in headers:
        return None
    start = end + 4
    stop = start + int(length)
    if stop - start > _MAX_BODY:
        return None
    if len(buf) < stop:
        return stop
    reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    return status, headers, start, stop, reusable


class _Slot:
    """One connection of a batch and the request it has in flight (``item`` is ``None`` when idle).

    Once connected, a slot's socket stays registered for reading until the batch ends
    (``events`` is what it is registered for): one request costs a send, a share of an
    ``epoll_wait`` and a recv, with no selector calls of its own.
    """

    __slots__ = ("buf", "conn", "events", "expires", "item", "need", "out", "phase", "reused",
                 "sock")

    def __init__(self, sock: socket.socket, conn: _Conn | None, phase: str, expires: float
                 ) -> None:
        self.sock = sock
        self.conn = conn
        self.phase = phase  # connect | handshake | ready | send | recv
        self.reused = conn is not None  # a kept-alive connection (may have been closed idle)
        self.item: int | None = None
        self.out = memoryview(b"")
        self.buf = bytearray()
        self.need = 0  # bytes that must be in buf before parsing again is worth it
        self.expires = expires
        self.events = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        else:
            with contextlib.suppress(OSError):
                self.sock.close()


def _want(exc: BaseException, default: int) -> int | None:
    """The selector event a non-blocking socket (plain or TLS) waits for, if it would block."""
    if isinstance(exc, BlockingIOError):
        return default
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        if isinstance(exc, ssl.SSLWantReadError):
            return selectors.EVENT_READ
        if isinstance(exc, ssl.SSLWantWriteError):
            return selectors.EVENT_WRITE
    return None


class _Multiplexer:
    """Run GETs on up to ``connections`` keep-alive connections of one transport, one thread.

    Each answer is ``(status, body, Location)`` or the exception that request met
    (OSError, ssl errors, VaultProtocolError, TimeoutError), in request order.
    ``warm``: open that many connections even if there are fewer requests, and wait
    for them to be connected, so they are in the pool for the next batch (a boot
    opens its read connections while its mount lookup is answered).
    """

    def __init__(self, transport: _Transport, wires: Sequence[bytes], *, deadline: float,
                 timeout: float, connections: int, warm: int = 0) -> None:
        self.t = transport
        self.wires = wires
        self.deadline = deadline
        self.timeout = timeout
        self.results: list[_Answer | BaseException | None] = [None] * len(wires)
        self.queue: deque[int] = deque(range(len(wires)))
        self.retried: set[int] = set()
        self.sel = selectors.DefaultSelector()
        self.slots: list[_Slot] = []
        self.warm = warm
        self.want = max(1, min(connections, max(len(wires), warm)))
        self.last_error: BaseException | None = None
        self._addr: Any = None
        self._family = socket.AF_INET

    # -- connections

    def _watch(self, slot: _Slot, events: int) -> None:
        if slot.events == events:
            return
        if slot.events:
            self.sel.modify(slot.sock, events, slot)
        else:
            self.sel.register(slot.sock, events, slot)
        slot.events = events

    def _open(self, *, fresh: bool = False) -> None:
        """Start one connection: a kept-alive one from the pool, else a non-blocking connect."""
        now = time.monotonic()
        expires = min(self.deadline, now + self.timeout)
        conn = None if fresh else self.t.take_idle()
        if conn is not None:
            conn.sock.setblocking(False)
            slot = _Slot(conn.sock, conn, "ready", expires)
            self.slots.append(slot)
            self._watch(slot, selectors.EVENT_READ)
            self._ready(slot)
            return
        try:
            if self._addr is None:
                info = socket.getaddrinfo(self.t.host, self.t.port, type=socket.SOCK_STREAM)
                family, _, _, _, self._addr = info[0]
                self._family = family
            sock = socket.socket(self._family, socket.SOCK_STREAM)
        except OSError as exc:
            self.last_error = exc
            return
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(self._addr)
        slot = _Slot(sock, None, "connect", expires)
        self.slots.append(slot)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._fail_slot(slot, ConnectionRefusedError(err, os.strerror(err)))
            return
        self._watch(slot, selectors.EVENT_WRITE)

    def _connected(self, slot: _Slot) -> None:
        err = slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise ConnectionRefusedError(err, os.strerror(err))
        if self.t.scheme == "https":
            # The handshake runs non-blocking too (RFC 8446 flights driven by the selector).
            self.sel.unregister(slot.sock)
            slot.events = 0
            slot.sock = self.t._ssl_context().wrap_socket(
                slot.sock, server_hostname=self.t.host, do_handshake_on_connect=False)
            slot.phase = "handshake"
            self._watch(slot, selectors.EVENT_WRITE)
            self._handshake(slot)
            return
        self._watch(slot, selectors.EVENT_READ)
        self._ready(slot)

    def _park(self, slot: _Slot, exc: OSError, default: int) -> None:
        """Wait for the event a would-block ``exc`` asks for; re-raise any other error."""
        event = _want(exc, default)
        if event is None:
            raise exc
        self._watch(slot, event)

    def _handshake(self, slot: _Slot) -> None:
        try:
            slot.sock.do_handshake()  # type: ignore[attr-defined]
        except OSError as exc:  # would-block errors (plain and TLS) are OSErrors
            self._park(slot, exc, selectors.EVENT_READ)
            return
        self._watch(slot, selectors.EVENT_READ)
        self._ready(slot)

    def _ready(self, slot: _Slot) -> None:
        """A connection is free: give it the next request at once, else let it idle."""
        slot.item = None
        if not self.queue:
            slot.phase = "ready"
            return
        try:
            self._assign(slot)
        except Exception as exc:  # noqa: BLE001 - recorded per request
            self._fail_slot(slot, exc)

    # -- requests

    def _assign(self, slot: _Slot) -> None:
        idx = self.queue.popleft()
        slot.item = idx
        slot.out = memoryview(self.wires[idx])
        slot.buf.clear()
        slot.need = 0
        slot.expires = min(self.deadline, time.monotonic() + self.timeout)
        slot.phase = "send"
        self._send(slot)

    def _send(self, slot: _Slot) -> None:
        while slot.out:
            try:
                n = slot.sock.send(slot.out)
            except OSError as exc:  # would-block errors (plain and TLS) are OSErrors
                self._park(slot, exc, selectors.EVENT_WRITE)
                return
            slot.out = slot.out[n:]
        # The answer is not there yet (a recv now would only meet EAGAIN): wait for it.
        slot.phase = "recv"
        self._watch(slot, selectors.EVENT_READ)

    def _recv(self, slot: _Slot) -> None:
        try:
            data = slot.sock.recv(65536)
            pending = getattr(slot.sock, "pending", None)  # TLS: decrypted bytes already buffered
            while pending is not None and pending():
                data += slot.sock.recv(65536)
        except OSError as exc:  # would-block errors (plain and TLS) are OSErrors
            self._park(slot, exc, selectors.EVENT_READ)
            return
        self._watch(slot, selectors.EVENT_READ)
        if slot.item is None:
            # An idle kept-alive connection became readable: the server closed it (or
            # spoke out of turn). It cannot carry another request.
            self._drop(slot)
            if len(self.queue) > sum(1 for s in self.slots if s.item is None):
                self._open(fresh=True)
            return
        eof = not data
        buf = slot.buf
        buf += data
        if not eof and len(buf) < slot.need:
            return
        quick = None if eof else _quick_response(buf)
        if isinstance(quick, int):
            slot.need = quick
            return
        if quick is not None:
            status, headers, start, stop, reusable = quick
            body = bytes(buf[start:stop])
            consumed = stop
        else:
            reader = _BufferReader(buf, eof)
            try:
                status, headers, body, reusable = _read_response(reader, "GET")
            except _NeedMore:
                slot.need = reader.need
                return
            consumed = reader.pos
        self.results[slot.item] = (status, body, headers.get("location"))
        slot.item = None
        slot.reused = True
        if not reusable or consumed != len(buf):  # extra bytes: the peer is out of step
            self._drop(slot)
            if len(self.queue) > sum(1 for s in self.slots if s.item is None):
                self._open(fresh=True)  # "Connection: close" answers: a new one takes its place
            return
        self._ready(slot)

    def _drop(self, slot: _Slot) -> None:
        if slot.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.sel.unregister(slot.sock)
            slot.events = 0
        slot.close()
        with contextlib.suppress(ValueError):
            self.slots.remove(slot)

    def _fail_slot(self, slot: _Slot, exc: BaseException) -> None:
        idx = slot.item
        stale = isinstance(exc, (_Disconnected, ConnectionResetError, BrokenPipeError))
        self._drop(slot)
        self.last_error = exc
        if idx is None:
            return
        if stale and slot.reused and idx not in self.retried:
            # A kept-alive connection the server closed while idle: repeat the read once,
            # on a fresh connection (as _Transport.request does; GETs only, so safe).
            self.retried.add(idx)
            self.queue.appendleft(idx)
            self._open(fresh=True)
            return
        self.results[idx] = exc

    # -- the loop

    def run(self) -> list[_Answer | BaseException]:
        try:
            # When warming, the requests' own connections first: their requests go out
            # at once, and the other connects are made while the server answers them.
            for _ in range(min(self.want, len(self.wires)) if self.warm else self.want):
                self._open()
            self._loop()
        finally:
            for slot in list(self.slots):
                if slot.phase == "ready" and slot.item is None:
                    if slot.events:
                        with contextlib.suppress(KeyError, ValueError):
                            self.sel.unregister(slot.sock)
                    self.t.give_back(slot.conn or _Conn(slot.sock))
                else:
                    self._drop(slot)
            self.sel.close()
        out: list[_Answer | BaseException] = []
        for r in self.results:
            out.append(r if r is not None else TimeoutError("no answer before the deadline"))
        return out

    def _loop(self) -> None:
        warm = self.warm
        more = warm > len(self.slots)
        while True:
            if more and not self.queue:
                # Every request is out: open the other connections while they are answered
                # (unless a connection already failed: the address is likely down).
                more = False
                if self.last_error is not None:
                    warm = 0
                    continue
                for _ in range(self.want - len(self.slots)):
                    self._open(fresh=True)
            # A slot is busy while it carries a request (or, when warming, still connects).
            busy = [s for s in self.slots if s.item is not None
                    or (warm and s.phase in ("connect", "handshake"))]
            if not busy:
                if not self.queue:
                    return
                if not self.slots:
                    # Every connection failed to open: the address is down (refused, reset).
                    err = self.last_error or ConnectionError("no connection to Vault")
                    while self.queue:
                        self.results[self.queue.popleft()] = err
                    return
                busy = [s for s in self.slots if s.phase != "ready"]
            now = time.monotonic()
            if now >= self.deadline:
                return
            wait = min([s.expires for s in busy], default=self.deadline)
            for key, _ in self.sel.select(max(0.0, min(wait, self.deadline) - now)):
                slot = key.data
                try:
                    phase = slot.phase
                    if phase == "recv" or phase == "ready":
                        self._recv(slot)
                    elif phase == "send":
                        self._send(slot)
                    elif phase == "connect":
                        self._connected(slot)
                    else:
                        self._handshake(slot)
                except Exception as exc:  # noqa: BLE001 - recorded per request
                    self._fail_slot(slot, exc)
            now = time.monotonic()
            for slot in list(self.slots):
                if slot.phase != "ready" and now >= slot.expires:
                    self._fail_slot(slot, TimeoutError("Vault did not answer in time"))


def _proxy_auth(proxy: Any) -> dict[str, str]:
    if not proxy.username:
        return {}
    import base64
    from urllib.parse import unquote

    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _decode(method: str, target: str, status: int, data: bytes, *, check: bool = True
            ) -> dict[str, Any]:
    """The JSON object of an answer; non-2xx raise :class:`VaultHTTPError` if ``check``."""
    body_json: Any = {}
    if data:
        try:
            body_json = _json.loads(data)
        except ValueError:
            body_json = None
    if check and not 200 <= status < 300:
        errors = body_json.get("errors") if isinstance(body_json, dict) else None
        raise VaultHTTPError(status, [str(e) for e in errors or []], method,
                             target.split("?", 1)[0])
    if not isinstance(body_json, dict):
        # A proxy's HTML page, say: never quote it (it could echo anything).
        raise BackendError(f"Vault answered HTTP {status} with a body that is not a JSON "
                           "object", source="vault", status=status)
    return body_json


# --- the client --------------------------------------------------------------------

class VaultClient:
    """A logged-in Vault/OpenBao client with fail-over across addresses.

    >>> vc = VaultClient.from_config()          # doctest: +SKIP
    >>> vc.request("GET", "sys/mounts")          # doctest: +SKIP

    Methods return the decoded JSON body (a ``dict``), or ``{}`` for 204.
    """

    def __init__(self, settings: VaultSettings, *, config: Config | None = None) -> None:
        self.settings = settings
        self._config = config
        self.addresses: tuple[str, ...] = settings.addr or (DEFAULT_ADDR,)
        self._index = 0
        self._lock = threading.RLock()
        self._transports: dict[str, _Transport] = {}
        self._ssl: ssl.SSLContext | None = None
        self._token: str | None = None
        self.auth_method: str | None = None
        self._mounts: dict[str, MountInfo] = {}
        self._mount_gates: dict[str, threading.Lock] = {}
        #: Counts of requests by ``METHOD path`` (benchmarks and tests read it; never values).
        self.request_count = 0

    @classmethod
    def from_config(cls, config: Config | None = None) -> VaultClient:
        config = config or Config.load()
        return cls(config.vault, config=config)

    def __repr__(self) -> str:
        return f"VaultClient(addr={self.address!r}, auth={self.auth_method!r})"

    @property
    def address(self) -> str:
        return self.addresses[self._index]

    # -- plumbing

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once (loading CA files costs milliseconds) and shared by every connection.
        if self._ssl is None:
            with self._lock:
                if self._ssl is None:
                    self._ssl = _ssl_context(self.settings)
        return self._ssl

    def _transport(self, addr: str) -> _Transport:
        transport = self._transports.get(addr)
        if transport is None:
            with self._lock:
                transport = self._transports.get(addr)
                if transport is None:
                    transport = _Transport(addr, ssl_context=self._ssl_context)
                    self._transports[addr] = transport
        return transport

    def close(self) -> None:
        """Close the idle keep-alive connections (the client stays usable)."""
        for transport in list(self._transports.values()):
            transport.close()

    def _headers(self, body: bytes | None) -> dict[str, str]:
        # X-Vault-Request marks an API client (Vault Agent's SSRF guard requires it).
        headers = {"X-Vault-Request": "true"}
        if self._token:
            headers["X-Vault-Token"] = self._token
        if self.settings.namespace:
            headers["X-Vault-Namespace"] = self.settings.namespace
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _send(self, transport: _Transport, method: str, target: str, body: bytes | None,
              timeout: float, *, check: bool = True) -> dict[str, Any]:
        """One HTTP exchange (following a standby's 307/308), decoded; non-2xx raise if ``check``."""
        headers = self._headers(body)
        for _ in range(5):
            status, data, location = transport.request(method, target, body, headers, timeout)
            if status not in (307, 308) or not location:
                break
            # A standby sends the client to the active node; keep the method and body.
            u = urlsplit(location)
            if u.scheme and u.netloc:
                transport = self._transport(f"{u.scheme}://{u.netloc}")
            target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        return _decode(method, target, status, data, check=check)

    def _call(self, fn: Callable[[_Transport], T], *, reference: str | None = None) -> T:
        """Run ``fn`` against the current address, failing over on unavailability."""
        last: VaultkitError | None = None
        n = len(self.addresses)
        start = self._index
        for step in range(n):
            idx = (start + step) % n
            addr = self.addresses[idx]
            try:
                with vault_errors("vault", reference=reference):
                    result = fn(self._transport(addr))
            except UnavailableError as exc:
                last = exc
                continue
            if idx != self._index:
                self._index = idx
            return result
        if last is None:  # pragma: no cover - addresses is never empty
            raise UnavailableError("no Vault address configured", source="vault")
        raise last

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                reference: str | None = None, authenticated: bool = True,
                timeout: float | None = None,
                params: dict[str, str] | None = None) -> dict[str, Any]:
        """Call ``/v1/<path>`` and return the JSON body (``{}`` when there is none).

        ``timeout`` (seconds) caps this one request, so a boot deadline also bounds a
        server that accepts connections and never answers.
        """
        if authenticated and self._token is None:
            self.login()
        try:
            return self._request_once(method, path, json=json, reference=reference,
                                      timeout=timeout, params=params)
        except AccessDeniedError:
            if not authenticated or not self._may_relogin():
                raise
        # The token may have expired (Vault answers 403 for that, too): log in again, once.
        self._token = None
        self.login()
        return self._request_once(method, path, json=json, reference=reference,
                                  timeout=timeout, params=params)

    def _may_relogin(self) -> bool:
        if self.auth_method in (None, "token"):
            return False  # a fixed token cannot be renewed by logging in again
        try:
            self._request_once("GET", "auth/token/lookup-self", reference="auth/token")
        except (AccessDeniedError, AuthenticationError):
            return True
        except VaultkitError:
            return False
        return False  # the token is fine: the 403 is a real policy refusal

    def _request_once(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                      reference: str | None = None, timeout: float | None = None,
                      params: dict[str, str] | None = None) -> dict[str, Any]:
        target = self._target(path, params)
        body = None if json is None else _json.dumps(json).encode()
        limit = self.settings.timeout
        seconds = limit if timeout is None else max(0.05, min(timeout, limit))

        def do(t: _Transport) -> dict[str, Any]:
            self.request_count += 1
            return self._send(t, method, target, body, seconds)

        return self._call(do, reference=reference or path)

    # -- mounts

    def mount_info(self, path: str, *, timeout: float | None = None) -> MountInfo:
        """The mount ``path`` lives under, its type and KV version (cached per mount).

        >>> vc.mount_info("kv/app/db")      # doctest: +SKIP
        MountInfo(path='kv', type='kv', kv_version=2)
        """
        path = path.strip("/")
        cached = self._cached_mount(path)
        if cached is not None:
            return cached
        # Single flight per first path segment: 16 threads booting at once ask once, not 16x.
        with self._lock:
            gate = self._mount_gates.setdefault(path.split("/", 1)[0], threading.Lock())
        with gate:
            cached = self._cached_mount(path)
            if cached is not None:
                return cached
            return self._lookup_mount(path, timeout)

    def cached_mount(self, path: str) -> MountInfo | None:
        """The mount ``path`` lives under if it was looked up before (no request)."""
        return self._cached_mount(path.strip("/"))

    def _cached_mount(self, path: str) -> MountInfo | None:
        for mount, info in list(self._mounts.items()):
            if path == mount or path.startswith(mount + "/"):
                return info
        return None

    def _lookup_mount(self, path: str, timeout: float | None) -> MountInfo:
        body = self.request("GET", f"sys/internal/ui/mounts/{path}", reference=path,
                            timeout=timeout)
        return self._store_mount(path, body)

    def _store_mount(self, path: str, body: dict[str, Any]) -> MountInfo:
        data = body.get("data") or {}
        mount = str(data.get("path") or path.split("/", 1)[0]).strip("/")
        mtype = str(data.get("type") or "unknown")
        options = data.get("options") or {}
        version = 0
        if mtype in ("kv", "generic"):
            version = 2 if str(options.get("version", "1")) == "2" else 1
        info = MountInfo(mount, mtype, version)
        with self._lock:
            self._mounts[mount] = info
        return info

    def read(self, path: str, *, reference: str | None = None, timeout: float | None = None,
             params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, reference=reference, timeout=timeout, params=params)

    def read_many(self, paths: Sequence[str], *,
                  params: Sequence[Mapping[str, str] | None] | None = None,
                  references: Sequence[str | None] | None = None,
                  timeout: float | None = None, connections: int = 8,
                  warm: int = 0) -> list[dict[str, Any] | VaultkitError]:
        """GET every path in one batch; each answer is the JSON body or its vaultkit error.

        One thread keeps one request in flight on each of up to ``connections``
        keep-alive connections to the current address (``selectors``, non-blocking
        sockets, TLS included); see "the multiplexed batch" above for why neither
        threads nor HTTP pipelining. ``timeout`` bounds the whole batch. Errors are
        those :meth:`request` raises for the same answer. A standby's redirect, a
        403 that a new login may cure, and an unavailable address (fail-over) go
        through :meth:`request`. ``warm``: also open (and keep in the pool) that many
        connections, for a batch that follows this one.

        >>> vc.read_many(["kv/data/a", "kv/data/b"])        # doctest: +SKIP
        [{'data': {...}}, NotFoundError('kv/data/b: HTTP 404 not found')]
        """
        if self._token is None:
            self.login()
        n = len(paths)
        refs = [(references[i] if references else None) or paths[i] for i in range(n)]
        opts = [params[i] if params else None for i in range(n)]
        targets = [self._target(paths[i], opts[i]) for i in range(n)]
        limit = self.settings.timeout
        deadline = time.monotonic() + (limit if timeout is None else max(0.05, timeout))
        out: list[dict[str, Any] | VaultkitError | None] = [None] * n

        def single(i: int) -> dict[str, Any] | VaultkitError:
            left = deadline - time.monotonic()
            if left <= 0:
                return DeadlineExceededError("Vault did not answer in time", source="vault",
                                             reference=refs[i])
            try:
                return self.request("GET", paths[i], reference=refs[i], timeout=left,
                                    params=dict(opts[i] or {}) or None)
            except VaultkitError as exc:
                return exc

        todo = list(range(n))
        for attempt in (0, 1):
            transport = self._transport(self.address)
            wires = transport.get_wires([targets[i] for i in todo], self._headers(None))
            left = max(0.0, deadline - time.monotonic())
            answers = transport.multiplex(wires, deadline=deadline, timeout=min(limit, left),
                                          connections=max(connections, warm),
                                          warm=warm) if left else None
            if answers is None:  # a proxy, or no time left: the ordinary path, one by one
                for i in todo:
                    out[i] = single(i)
                break
            self.request_count += len(todo)
            for i, answer in zip(todo, answers, strict=True):
                out[i] = self._batch_answer(answer, targets[i], refs[i])
                if isinstance(answer, tuple) and answer[0] in (307, 308) and answer[2]:
                    out[i] = single(i)  # a standby's redirect: request() follows it
            if attempt:
                break
            again: list[int] = []
            down = [i for i in todo if isinstance(out[i], UnavailableError)
                    and not isinstance(out[i], DeadlineExceededError)]
            if down:
                # Fail over like request(): the first one finds a live address (or says
                # none is); the rest go there as the next batch.
                out[down[0]] = first = single(down[0])
                if not isinstance(first, UnavailableError):
                    again += down[1:]
            denied = [i for i in todo if isinstance(out[i], AccessDeniedError)]
            if denied and self._may_relogin():
                self._token = None  # the token expired: log in again, once, as request() does
                self.login()
                again += denied
            if not again:
                break
            todo = sorted(again)
        return [r if r is not None else DeadlineExceededError(
            "Vault did not answer in time", source="vault", reference=refs[i])
            for i, r in enumerate(out)]

    def _target(self, path: str, params: Mapping[str, str] | None) -> str:
        target = "/v1/" + quote(path.lstrip("/"), safe=_SAFE_PATH)
        return target + "?" + urlencode(params) if params else target

    @staticmethod
    def _batch_answer(answer: tuple[int, bytes, str | None] | BaseException, target: str,
                      reference: str) -> dict[str, Any] | VaultkitError:
        if not isinstance(answer, BaseException) and 200 <= answer[0] < 300 and answer[1]:
            # The common case, without the error-mapping machinery _decode runs under.
            try:
                body = _json.loads(answer[1])
            except ValueError:
                body = None
            if isinstance(body, dict):
                return body
        if isinstance(answer, BaseException):
            # The same mapping as vault_errors() around request(): network -> unavailable, etc.
            mapped = map_exception(answer, source="vault", reference=reference)
            if mapped is None:
                raise answer
            mapped.__cause__ = answer
            return mapped
        try:
            with vault_errors("vault", reference=reference):
                return _decode("GET", target, answer[0], answer[1])
        except VaultkitError as exc:
            return exc

    def mount_infos(self, paths: Sequence[str], *, timeout: float | None = None,
                    warm: int = 0) -> list[MountInfo | VaultkitError]:
        """:meth:`mount_info` for several paths, the uncached lookups as one :meth:`read_many`.

        ``warm``: open that many connections while the lookups are answered (see
        :meth:`read_many`), for the reads that depend on them.
        """
        wanted = [p.strip("/") for p in paths]
        out: list[MountInfo | VaultkitError | None] = [self._cached_mount(p) for p in wanted]
        todo = [i for i, info in enumerate(out) if info is None]
        if todo:
            answers = self.read_many([f"sys/internal/ui/mounts/{wanted[i]}" for i in todo],
                                     references=[wanted[i] for i in todo], timeout=timeout,
                                     warm=warm)
            for i, answer in zip(todo, answers, strict=True):
                out[i] = answer if isinstance(answer, VaultkitError) else self._store_mount(
                    wanted[i], answer)
        return [info for info in out if info is not None]

    def write(self, path: str, data: dict[str, Any] | None = None, *,
              reference: str | None = None) -> dict[str, Any]:
        return self.request("POST", path, json=data or {}, reference=reference)

    def health(self) -> dict[str, Any]:
        """``sys/health`` of the current address (sealed and standby are reported, not raised)."""
        def do(t: _Transport) -> dict[str, Any]:
            return self._send(t, "GET", "/v1/sys/health?standbyok=true&perfstandbyok=true",
                              None, self.settings.timeout, check=False)
        return self._call(do, reference="sys/health")

    # -- auth

    @property
    def token(self) -> str | None:
        """The current client token (for code that talks to Vault itself; never log it)."""
        return self._token

    def login(self, *, method: str | None = None) -> str:
        """Run the auth chain (or one ``method``) and return the method that succeeded."""
        with self._lock:
            wanted = method or self.settings.auth
            if wanted and wanted not in AUTH_METHODS:
                raise ConfigError(f"unknown vault auth method {wanted!r}; expected one of "
                                  f"{', '.join(AUTH_METHODS)}")
            candidates = [wanted] if wanted else list(AUTH_METHODS)
            for name in candidates:
                token = getattr(self, f"_login_{name}")()
                if token is not None:
                    self._token = token
                    self.auth_method = name
                    return name
            tried = ", ".join(candidates)
            raise AuthenticationError(f"no Vault credentials found (tried: {tried})",
                                      source="vault")

    def _login_token(self) -> str | None:
        return self.settings.token or None

    def _login_token_file(self) -> str | None:
        path = Path(self.settings.token_file) if self.settings.token_file else (
            Path.home() / ".vault-token")
        if not path.is_file():
            if self.settings.token_file:
                raise ConfigError("vault.token_file does not exist", reference=str(path))
            return None
        check_private_file(path)
        return path.read_text().strip() or None

    def _secret_from(self, file: str | None, env: str | None) -> str | None:
        if file:
            check_private_file(file)
            return Path(file).read_text().strip()
        if env and os.environ.get(env):
            return os.environ[env]
        return None

    def _auth_post(self, mount: str, suffix: str, payload: dict[str, Any]) -> str:
        body = self.request("POST", f"auth/{mount}/{suffix}", json=payload,
                            authenticated=False, reference=f"auth/{mount}")
        auth = body.get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise AuthenticationError("login returned no token", source="vault",
                                      reference=f"auth/{mount}")
        return str(token)

    def _login_approle(self) -> str | None:
        s = self.settings
        secret_id = self._secret_from(s.secret_id_file, s.secret_id_env)
        if not s.role_id or secret_id is None:
            return None
        return self._auth_post(s.auth_mount or "approle", "login",
                               {"role_id": s.role_id, "secret_id": secret_id})

    def _login_kubernetes(self) -> str | None:
        s = self.settings
        path = Path(s.kubernetes_jwt_file)
        if not s.role or not path.is_file():
            return None
        # Re-read on every login: the kubelet rotates projected service-account tokens in place.
        try:
            jwt = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the Kubernetes service-account token "
                              f"({type(exc).__name__})", reference=str(path)) from exc
        if not jwt:
            raise ConfigError("the Kubernetes service-account token file is empty",
                              reference=str(path))
        return self._auth_post(s.auth_mount or "kubernetes", "login", {"role": s.role, "jwt": jwt})

    def _login_jwt(self) -> str | None:
        s = self.settings
        if not s.role or not s.jwt_file:
            return None
        jwt = Path(s.jwt_file).read_text().strip()
        return self._auth_post(s.auth_mount or "jwt", "login", {"role": s.role, "jwt": jwt})

    def _login_aws(self) -> str | None:
        s = self.settings
        if not s.role:
            return None
        import base64
        import json as _json

        from . import aws as aws_backend

        cfg = self._config or Config.load()
        with aws_backend.aws_errors("aws", reference="sts:GetCallerIdentity"):
            creds = aws_backend.session(cfg).get_credentials()
            frozen = creds.get_frozen_credentials() if creds is not None else None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            return None
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # Vault replays this signed sts:GetCallerIdentity request against its own configured
        # sts_endpoint, keeping the signed Host, and STS checks the signature. The global
        # endpoint only accepts a us-east-1 credential scope ("Credential should be scoped to
        # a valid region", hvac#251), so sign for sts.amazonaws.com in us-east-1 whatever
        # [aws] region is: that is what Vault's own CLI and hvac send by default and what a
        # Vault with the default (global) sts_endpoint expects. AWS_REGION is ambient on
        # Lambda/ECS, so it must not switch the host to a regional one Vault was not told of.
        url = "https://sts.amazonaws.com/"
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   # Explicit, so the Host Vault forwards is exactly the one that was signed.
                   "Host": "sts.amazonaws.com"}
        if s.aws_header_value:
            # Signed too: binds the request to this Vault (iam_server_id_header_value),
            # so a request captured by another server cannot be replayed here.
            headers["X-Vault-AWS-IAM-Server-ID"] = s.aws_header_value
        body = "Action=GetCallerIdentity&Version=2011-06-15"
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(frozen, "sts", "us-east-1").add_auth(request)
        signed = _json.dumps({k: [v] for k, v in request.headers.items()})
        payload = {
            "iam_http_request_method": "POST",
            "iam_request_url": base64.b64encode(url.encode()).decode(),
            "iam_request_body": base64.b64encode(body.encode()).decode(),
            "iam_request_headers": base64.b64encode(signed.encode()).decode(),
            "role": s.role,
        }
        return self._auth_post(s.auth_mount or "aws", "login", payload)

    def lookup_self(self) -> dict[str, Any]:
        data: dict[str, Any] = self.request("GET", "auth/token/lookup-self").get("data") or {}
        return data

    def renew_self(self, increment: int | None = None) -> dict[str, Any]:
        """Renew the client token; if renewal is refused, log in again."""
        try:
            body = self.request("POST", "auth/token/renew-self",
                                json={"increment": increment} if increment else {})
        except (AccessDeniedError, AuthenticationError, ConfigError):
            dead = self._token
            self._token = None
            self.login()
            if self._token == dead:
                # A fixed token (VAULT_TOKEN, an unchanged token file) cannot be replaced by
                # logging in again: say so instead of carrying on with the dead token.
                raise AuthenticationError("the Vault token can no longer be renewed and no "
                                          "other credentials are available", source="vault",
                                          reference="auth/token/renew-self") from None
            return {"relogin": True}
        return body.get("auth") or {}

    # -- leases

    def renew_lease(self, lease_id: str, increment: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"lease_id": lease_id}
        if increment:
            payload["increment"] = increment
        return self.request("PUT", "sys/leases/renew", json=payload, reference=lease_id)

    def revoke_lease(self, lease_id: str) -> None:
        self.request("PUT", "sys/leases/revoke", json={"lease_id": lease_id}, reference=lease_id)


_default_lock = threading.Lock()
_default: dict[int, VaultClient] = {}


def vault_client(config: Config | None = None) -> VaultClient:
    """The shared :class:`VaultClient` for ``config`` (one per config object)."""
    config = config or Config.load()
    with _default_lock:
        client = _default.get(id(config))
        if client is None or client._config is not config:
            client = VaultClient.from_config(config)
            _default[id(config)] = client
        return client


__all__ = ["AUTH_METHODS", "MountInfo", "VaultClient", "VaultHTTPError", "map_exception",
           "vault_client", "vault_errors"]
