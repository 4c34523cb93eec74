"""The HTTP layer under :class:`~vaultkit.backends.vault.VaultClient`: urllib3 plus vaultkit's limits.

A transport sends one :class:`Request` and returns one :class:`Response`; it follows no
redirects and retries nothing (the client decides both). Failures are vaultkit errors:
:class:`UnavailableError` (refused, reset, a broken answer: :class:`VaultProtocolError`),
:class:`DeadlineExceededError`, :class:`TLSError`, :class:`ConfigError`.

:class:`Urllib3Transport` is the real one:

* One thread-safe urllib3 ``PoolManager`` per client (a ``ProxyManager`` per proxy in
  use), keep-alive connections, ``retries=False``, ``redirect=False``.
* A *total* timeout per request: connect, TLS handshake, headers and body together.
  urllib3's read timeout applies to each ``recv``, so a server that trickles a byte
  every half second would never trip it; a watchdog thread shuts the connection's
  socket down when the request's deadline passes, which ends whatever read is blocked.
* Strict framing on top of ``http.client``'s parser (:class:`_StrictResponse`): an
  ASCII-digits Content-Length, never with Transfer-Encoding; hex chunk sizes only;
  at most 32 interim (1xx) answers; bodies capped at 64 MiB, read in pieces.
* Proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` (see
  :func:`proxy_for`); ``https://`` proxies are spoken to over TLS.
* TLS as the ``vault``/``bao`` CLI: the system trust store, or only ``cacert``/``capath``
  when set; ``tls_server_name`` for SNI and the name check; a client certificate pair.

:class:`~vaultkit.backends.vault.mock.MockTransport` is its in-memory twin for unit tests.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import heapq
import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from ...errors import ConfigError, DeadlineExceededError, VaultkitError
from ...files import check_private_file
from .errors import VaultProtocolError, chain, map_exception
from .proxies import bypasses_proxy, proxy_for

if TYPE_CHECKING:
    import ssl

    from ...config import VaultSettings

logger = logging.getLogger("vaultkit.vault")

#: Vault refuses requests over 32 MiB (max_request_size); an answer past 64 MiB is a broken peer.
MAX_BODY = 64 * 1024 * 1024
MAX_INTERIM = 32  # 1xx answers before the final one; Vault sends none
_PIECE = 256 * 1024


@dataclass(frozen=True)
class Request:
    """One HTTP exchange: an absolute ``url``, and a ``deadline`` on :func:`time.monotonic`."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = field(default=None, repr=False)
    deadline: float = 0.0


@dataclass(frozen=True)
class Response:
    """The final answer: status, headers (lower-case names) and the whole body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)


class Transport(Protocol):
    """What :class:`VaultClient` needs from the network (``MockTransport`` implements it too)."""

    def send(self, request: Request) -> Response: ...

    def close(self) -> None: ...


# --- the total deadline --------------------------------------------------------------

class _Guard:
    """One request's deadline and the sockets it uses; fired by :data:`_WATCHDOG`."""

    __slots__ = ("at", "done", "fired", "lock", "reused", "socks")

    def __init__(self, at: float) -> None:
        self.at = at
        self.socks: list[socket.socket] = []
        self.fired = False
        self.done = False
        self.reused = False
        self.lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.socks.append(sock)
            if not self.fired:
                return
        _shut(sock)

    def fire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            socks = list(self.socks)
        for sock in socks:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown(2) wakes a recv/send blocked in another thread (close() would not, and
    # could let the descriptor be reused under it). The base class method, so that a
    # TLS socket's state is left to the thread using it.
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that fires guards at their deadlines (a heap, lazily cleaned)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, guard: _Guard) -> None:
        with self._cond:
            if len(self._heap) > 4096:  # finished guards far in the future: drop them
                self._heap = [e for e in self._heap if not e[2].done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (guard.at, next(self._seq), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vaultkit-deadline",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, guard = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0 and not guard.done:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not guard.done:
                guard.fire()


_WATCHDOG = _Watchdog()
_local = threading.local()


def _watch(sock: socket.socket | None, *, reused: bool = False) -> None:
    guard: _Guard | None = getattr(_local, "guard", None)
    if guard is not None and sock is not None:
        guard.reused = reused
        guard.watch(sock)


# --- strict framing on http.client's parser ----------------------------------------

_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,15}")


@functools.cache
def _connection_classes() -> tuple[type, type, type, type]:
    """urllib3's connection and pool classes with strict framing and deadline guards.

    Built on first use, so that importing this module imports neither urllib3 nor
    http.client (and the email package it parses headers with).
    """
    import http.client

    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _StrictResponse(http.client.HTTPResponse):
        """``http.client``'s response parser with the checks a hostile peer needs.

        http.client accepts ``int(line, 16)`` as a chunk size (so ``-1``, ``0x10`` and
        ``1_0``; ``-1`` then reads until the peer closes), skips any number of ``100``
        answers, and turns a bad Content-Length into "read until close". RFC 9112
        sections 6.3 and 7.1 say what a recipient should do instead; these overrides do it.
        """

        _vk_interim = 0

        def _read_status(self) -> tuple[str, int, str]:
            self._vk_interim += 1
            if self._vk_interim > MAX_INTERIM:
                raise VaultProtocolError(f"more than {MAX_INTERIM} interim (1xx) answers")
            status: tuple[str, int, str] = super()._read_status()  # type: ignore[misc]
            return status

        def begin(self) -> None:
            super().begin()
            te = self.headers.get_all("transfer-encoding") or []
            lengths = self.headers.get_all("content-length") or []
            if te and lengths:
                # RFC 9112 6.3: both framings at once is how requests are smuggled.
                raise VaultProtocolError("the answer has both Content-Length and Transfer-Encoding")
            if te and ", ".join(te).strip().lower() != "chunked":
                raise VaultProtocolError("unsupported Transfer-Encoding")
            if lengths and (len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0].strip())):
                # str.isdigit/int accept non-ASCII digits ("²", "٣"); the header is ASCII only.
                raise VaultProtocolError("malformed Content-Length")
            if lengths and int(lengths[0]) > MAX_BODY:
                raise VaultProtocolError(f"Vault's answer is larger than {MAX_BODY >> 20} MiB")

        def _read_next_chunk_size(self) -> int:
            line = self.fp.readline(65537)
            size = line.split(b";", 1)[0].strip()
            if len(line) > 65536 or not _HEX.fullmatch(size):
                self._close_conn()  # type: ignore[attr-defined]
                raise VaultProtocolError("malformed chunk size")
            return int(size, 16)

    class Watched:
        """Registers its socket with the current request's deadline guard."""

        response_class: Any = _StrictResponse
        sock: socket.socket | None
        _vk_requests = 0

        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            _watch(sock)
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            self._vk_requests += 1
            if self.sock is not None:
                _watch(self.sock, reused=self._vk_requests > 1)
            super().request(*args, **kwargs)  # type: ignore[misc]

    class Conn(Watched, HTTPConnection):
        pass

    class TLSConn(Watched, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConn

    return Conn, TLSConn, Pool, TLSPool


# --- TLS -------------------------------------------------------------------------------

def ssl_context(s: VaultSettings, *, client_cert: bool = True) -> ssl.SSLContext:
    """TLS as the vault/bao CLI sets it up (``client_cert=False``: for a proxy)."""
    import ssl

    verify = s.tls_verify and not s.skip_verify
    try:
        if not verify:
            logger.warning("TLS certificate verification of Vault is OFF (*_SKIP_VERIFY or "
                           "[vault] tls_verify = false): anyone on the path can read the token")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif s.cacert or s.capath:
            # Like the bao CLI: the configured CAs replace the system store, and CACERT and
            # CAPATH add up (checked against the binary: tests/integration/test_vault_env.py).
            # A directory is read file by file, as Go does; OpenSSL's capath would want
            # c_rehash'ed names.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks the hostname
            for source in (s.cacert, s.capath):
                if not source:
                    continue
                files = ([os.path.join(source, n) for n in sorted(os.listdir(source))]
                         if os.path.isdir(source) else [source])
                for name in files:
                    if os.path.isfile(name):
                        ctx.load_verify_locations(cafile=name)
        else:
            ctx = ssl.create_default_context()  # the system trust store
        if client_cert and s.client_cert:
            if not s.client_key:
                raise ConfigError("vault.client_cert needs vault.client_key", source="vault")
            check_private_file(s.client_key)
            ctx.load_cert_chain(s.client_cert, s.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the Vault TLS files ({type(exc).__name__}); check "
                          "BAO_CACERT/VAULT_CACERT, BAO_CAPATH/VAULT_CAPATH and the client "
                          "certificate pair", source="vault") from exc
    return ctx


# --- the transport -------------------------------------------------------------------

class Urllib3Transport:
    """urllib3 underneath, with a total deadline, strict framing and capped bodies.

    >>> t = Urllib3Transport(VaultSettings(addr=("http://127.0.0.1:8200",)))  # doctest: +SKIP
    >>> t.send(Request("GET", "http://127.0.0.1:8200/v1/sys/health",
    ...                deadline=time.monotonic() + 3)).status                 # doctest: +SKIP
    200
    """

    def __init__(self, settings: VaultSettings, *, maxsize: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.maxsize = max(1, maxsize or settings.max_connections)
        self._env = env
        self._lock = threading.Lock()
        self._managers: dict[tuple[str | None, str], Any] = {}
        self._routes: dict[str, tuple[Any, Any]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_context(self.settings)
        return self._ssl

    def _opener(self, url: str) -> tuple[Any, str]:
        """What to call ``urlopen`` on for ``url``, and the URL to give it.

        Direct connections go to the address's own pool with the path only (the
        pool manager's URL parsing and pool lookup, per request, cost more than
        the dict lookup); a proxy's manager gets the absolute URL. Decided once per
        address and client: the proxy variables are read when a client first
        talks to an address.
        """
        u = urlsplit(url)
        origin = f"{u.scheme}://{u.netloc}"
        route = self._routes.get(origin)
        if route is None or (route[1] is not None and route[1].pool is None):
            # (a pool the manager evicted from its LRU is closed: look it up again)
            proxy = proxy_for(url, self._env)
            manager = self._manager(url, proxy)
            pool = None if proxy is not None else manager.connection_from_url(origin)
            route = self._routes[origin] = (manager, pool)
        manager, pool = route
        if pool is None:
            return manager, url
        return pool, url[len(origin):] or "/"

    def _manager(self, url: str, proxy: str | None) -> Any:
        scheme = urlsplit(url).scheme
        key = (proxy, scheme)
        with self._lock:
            manager = self._managers.get(key)
            if manager is not None:
                return manager
            import urllib3

            _, _, pool, tls_pool = _connection_classes()
            kw: dict[str, Any] = {"maxsize": self.maxsize, "block": False, "retries": False}
            if scheme == "https":
                kw["ssl_context"] = self._context()
                if self.settings.tls_server_name:
                    kw["server_hostname"] = self.settings.tls_server_name
            if proxy is None:
                manager = urllib3.PoolManager(**kw)
            else:
                pu = urlsplit(proxy)
                headers = {}
                if pu.username:
                    # UTF-8, as Go's net/http (the bao CLI) sends it: urllib3's make_headers
                    # encodes Latin-1 only, and its UnicodeEncodeError would hold the password.
                    pair = f"{unquote(pu.username)}:{unquote(pu.password or '')}"
                    headers = {"Proxy-Authorization": "Basic " + base64.b64encode(
                        pair.encode("utf-8", "surrogateescape")).decode("ascii")}
                if pu.scheme == "https":
                    # The proxy is checked against the same trust roots, without the
                    # client certificate meant for Vault.
                    kw["proxy_ssl_context"] = ssl_context(self.settings, client_cert=False)
                host = f"[{pu.hostname}]" if ":" in (pu.hostname or "") else pu.hostname
                clean = f"{pu.scheme}://{host}" + (f":{pu.port}" if pu.port else "")
                manager = urllib3.ProxyManager(clean, proxy_headers=headers, **kw)
            manager.pool_classes_by_scheme = {"http": pool, "https": tls_pool}
            self._managers[key] = manager
            return manager

    def send(self, request: Request) -> Response:
        for attempt in (0, 1):
            guard = _Guard(request.deadline)
            try:
                return self._send_once(request, guard)
            except _StaleConnection:
                # A kept-alive connection the server had closed while idle: repeat a read
                # once on a new one (a write may have been applied, so it is not repeated).
                if attempt or request.method not in ("GET", "HEAD"):
                    raise VaultProtocolError("Vault closed the connection without answering "
                                             "(RemoteDisconnected)") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, request: Request, guard: _Guard) -> Response:
        import urllib3

        left = request.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceededError("Vault did not answer in time (no time left)",
                                        source="vault")
        opener, url = self._opener(request.url)
        _WATCHDOG.add(guard)
        _local.guard = guard
        resp: Any = None
        complete = False
        failure: BaseException | None = None
        cause: BaseException | None = None
        try:
            resp = opener.urlopen(
                request.method, url, body=request.body, headers=dict(request.headers),
                redirect=False, retries=False, preload_content=False, decode_content=False,
                assert_same_host=False, timeout=urllib3.Timeout(connect=left, read=left))
            body = self._read_body(resp)
            complete = True
            if guard.fired:
                # The watchdog's shutdown reads as a clean end of headers or of a
                # close-delimited body: the answer is cut short, not complete.
                raise self._late(request)
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
        except VaultkitError as exc:
            failure = self._late(request) if guard.fired else exc
        except Exception as exc:
            if guard.fired:
                failure = self._late(request)
            elif guard.reused and _closed_before_answer(exc):
                failure = _StaleConnection()
            else:
                mapped = map_exception(exc, source="vault")
                if mapped is None:
                    raise
                # Exceptions that can hold the server's bytes (a status line, a partial
                # body) are not chained: only their type name is in the message.
                failure, cause = mapped, (None if _carries_bytes(exc) else exc)
        finally:
            with guard.lock:
                guard.done = True
            _local.guard = None
            if resp is not None:
                if not complete:
                    resp.close()  # not read to the end: the connection is out of step
                resp.release_conn()
        # Raised here, outside the except blocks, so that no __context__ keeps what was
        # dropped from __cause__.
        raise failure from cause

    @staticmethod
    def _late(request: Request) -> DeadlineExceededError:
        return DeadlineExceededError("Vault did not answer within the request's total timeout",
                                     source="vault")

    @staticmethod
    def _read_body(resp: Any) -> bytes:
        if resp.length_remaining is not None:
            # A Content-Length, already checked against MAX_BODY: one read of exactly that.
            data: bytes = resp.read(decode_content=False)
            return data
        parts: list[bytes] = []  # chunked or close-delimited: capped as it arrives
        total = 0
        while True:
            piece: bytes = resp.read(_PIECE, decode_content=False)
            if not piece:
                break
            total += len(piece)
            if total > MAX_BODY:
                raise VaultProtocolError(f"Vault's answer is larger than {MAX_BODY >> 20} MiB")
            parts.append(piece)
        return b"".join(parts)

    def close(self) -> None:
        """Close the idle keep-alive connections (the transport stays usable)."""
        with self._lock:
            managers, self._managers, self._routes = list(self._managers.values()), {}, {}
        for manager in managers:
            manager.clear()


class _StaleConnection(Exception):
    pass


def _carries_bytes(exc: BaseException) -> bool:
    """Whether ``exc`` may hold the server's bytes (a status line, a partial body)."""
    import http.client

    return any(isinstance(e, http.client.HTTPException) for e in chain(exc))


def _closed_before_answer(exc: BaseException) -> bool:
    """The server closed (or reset) the connection before a status line arrived."""
    import http.client

    return any(isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError,
                              BrokenPipeError)) for e in chain(exc))


__all__ = ["MAX_BODY", "Request", "Response", "Transport", "Urllib3Transport", "bypasses_proxy",
           "proxy_for", "ssl_context"]
