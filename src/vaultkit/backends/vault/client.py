""":class:`VaultClient`: requests, fail-over, redirects, tokens, leases and batch reads.

Vault's HTTP API is spoken here and nowhere else: callers get plain dicts back and
vaultkit errors out. The bytes go through a :class:`~.transport.Transport`
(urllib3 by default; :class:`~.mock.MockTransport` in unit tests).

Several addresses (``addr = ["https://a:8200", "https://b:8200"]``) are tried in turn:
a connection failure, a 429/500/503 (sealed, a standby during a leader election)
moves to the next address and the call is repeated there; the address that answered
becomes the first one tried next time. A whole round of unavailable addresses raises
:class:`UnavailableError`, which ``load_secrets`` retries with backoff.

Redirects follow the rule of Vault's own Go client (``api.Client.RawRequest``): at
most one redirect (301, 302, 307, 308; the method and body are kept, as a standby
sending a client to the active node expects), and never from https to http. Any other
redirect is a :class:`BackendError` naming both addresses, and nothing (no token, no
body) is sent to the second one.

KV v1/v2 detection: :meth:`VaultClient.mount_info` asks ``sys/internal/ui/mounts/<path>``
(the endpoint the Vault UI and CLI use) and caches the answer per mount.

Token expiry: when a call is refused with 403 and the client logged in with a method it
can repeat (AppRole, JWT, Kubernetes, AWS, token file), it logs in again once and
repeats the call.
"""

from __future__ import annotations

import builtins
import json as _json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ...config import Config, VaultSettings
from ...errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    UnavailableError,
    VaultkitError,
)
from . import auth as _auth
from .errors import VaultHTTPError, clean_text, from_status
from .mounts import MountInfo, MountLookups
from .transport import Request, Response, Transport

T = TypeVar("T")

DEFAULT_ADDR = "http://127.0.0.1:8200"
_SAFE_PATH = "!$&'()*+,/:;=@[]~%"  # requests' requote_uri keeps these (and unreserved) as-is
_REDIRECTS = (301, 302, 307, 308)
# A header value must be visible ASCII: a line break would inject headers, and
# http.client's own errors for bad values quote the whole value (the token).
_TOKEN_SAFE = re.compile(r"[\x21-\x7e]+")
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def _origin(url: str, redact: Sequence[str | None] = ()) -> str:
    """``scheme://host:port`` of a URL, cleaned for a message (no path, query or userinfo).

    ``redact``: the token and login secrets, which a server that received them can put
    in a ``Location``'s host name.
    """
    try:
        u = urlsplit(url)
        host = u.hostname or ""
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return clean_text(url, redact, limit=80)
    return clean_text(f"{u.scheme}://{host}{port}", redact, limit=120)


class VaultClient(MountLookups):
    """A logged-in Vault/OpenBao client with fail-over across addresses.

    >>> vc = VaultClient.from_config()          # doctest: +SKIP
    >>> vc.request("GET", "sys/mounts")          # doctest: +SKIP

    Methods return the decoded JSON body (a ``dict``), or ``{}`` for 204.
    ``transport``: where requests go (default: urllib3, see :mod:`.transport`).
    """

    def __init__(self, settings: VaultSettings, *, config: Config | None = None,
                 transport: Transport | None = None) -> None:
        self.settings = settings
        self._config = config
        self.addresses: tuple[str, ...] = tuple(a.rstrip("/") for a in settings.addr) or (
            DEFAULT_ADDR,)
        for addr in self.addresses:
            u = urlsplit(addr)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ConfigError("invalid Vault address (expected http(s)://host[:port])",
                                  reference=clean_text(addr, limit=80), source="vault")
        self._index = 0
        self._lock = threading.RLock()
        self._transport = transport
        self._pool: ThreadPoolExecutor | None = None
        self._token: str | None = None
        self.auth_method: str | None = None
        #: Why :attr:`auth_method` was chosen (``vaultkit doctor`` shows it).
        self.auth_reason: str | None = None
        self._mounts: dict[str, MountInfo] = {}
        self._mount_gates: dict[str, threading.Lock] = {}
        #: How many requests were sent (benchmarks and tests read it; never values).
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

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    from .transport import Urllib3Transport  # urllib3 only when first used

                    self._transport = Urllib3Transport(self.settings)
        return self._transport

    def close(self) -> None:
        """Close the idle keep-alive connections and the batch threads (the client stays usable)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        if self._transport is not None:
            self._transport.close()

    # -- one exchange

    def _headers(self, body: bytes | None, *, anonymous: bool = False) -> dict[str, str]:
        # X-Vault-Request marks an API client (Vault Agent's SSRF guard requires it).
        headers = {"X-Vault-Request": "true"}
        if self._token and not anonymous:
            if not _TOKEN_SAFE.fullmatch(self._token):
                raise ConfigError("the Vault token contains a character that cannot be sent in "
                                  "an HTTP header (a space, a line break or a non-ASCII "
                                  "character): check BAO_TOKEN/VAULT_TOKEN or the token file",
                                  source="vault")
            headers["X-Vault-Token"] = self._token
        if self.settings.namespace:
            if not _HEADER_SAFE.fullmatch(self.settings.namespace):
                raise ConfigError("the Vault namespace contains a character that cannot be "
                                  "sent in an HTTP header", source="vault")
            headers["X-Vault-Namespace"] = self.settings.namespace
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _exchange(self, addr: str, method: str, target: str, body: bytes | None,
                  deadline: float, *, anonymous: bool = False,
                  redact: Sequence[str] = ()) -> Response:
        """Send one request to ``addr``, following at most one redirect by Vault's rule."""
        headers = self._headers(body, anonymous=anonymous)
        secrets = (self._token, *redact)

        def shown(u: str) -> str:
            return _origin(u, secrets)

        url = addr + target  # an address may carry a path prefix (a reverse proxy's)
        self.request_count += 1
        resp = self.transport.send(Request(method, url, headers, body, deadline))
        if resp.status not in _REDIRECTS:
            return resp
        location = resp.headers.get("location")
        if not location:
            raise BackendError(f"Vault at {shown(url)} answered HTTP {resp.status} without a "
                               "Location", source="vault", status=resp.status)
        try:
            second = urljoin(url, location.strip())
            scheme = urlsplit(second).scheme
        except ValueError:
            second, scheme = location, ""
        if scheme not in ("http", "https"):
            raise BackendError(f"Vault at {shown(url)} redirected to {shown(second)}: "
                               "refused (not an http or https address)", source="vault",
                               status=resp.status)
        if urlsplit(url).scheme == "https" and scheme != "https":
            # Vault's Go client refuses this too ("redirect would cause protocol downgrade"):
            # the token would cross the network in cleartext.
            raise BackendError(f"Vault at {shown(url)} redirected to {shown(second)}: "
                               "refused (https to http would send the token in cleartext)",
                               source="vault", status=resp.status)
        self.request_count += 1
        final = self.transport.send(Request(method, second, headers, body, deadline))
        if final.status in _REDIRECTS:
            third = final.headers.get("location", "")
            try:
                third = urljoin(second, third.strip())
            except ValueError:
                pass  # shown() cleans it whatever it is
            raise BackendError(f"Vault at {shown(url)} redirected to {shown(second)}, which "
                               f"redirected again ({shown(third)}): only one "
                               "redirect is followed", source="vault", status=final.status)
        return final

    def _decode(self, method: str, path: str, resp: Response, *, check: bool = True,
                redact: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON object of an answer; non-2xx raise :class:`VaultHTTPError` if ``check``."""
        body_json: Any = {}
        if resp.body:
            try:
                body_json = _json.loads(resp.body)
            except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
                body_json = None
        if check and not 200 <= resp.status < 300:
            if 100 <= resp.status < 200:
                raise BackendError(f"Vault answered with an interim HTTP {resp.status} as its "
                                   "final answer", source="vault", status=resp.status)
            errors = body_json.get("errors") if isinstance(body_json, dict) else None
            secrets = (self._token, *redact)
            cleaned = [clean_text(e, secrets) for e in errors or [] if isinstance(e, str)]
            raise VaultHTTPError(resp.status, cleaned, method, path)
        if not isinstance(body_json, dict):
            # A proxy's HTML page, say: never quote it (it could echo anything).
            raise BackendError(f"Vault answered HTTP {resp.status} with a body that is not a "
                               "JSON object", source="vault", status=resp.status)
        return body_json

    def _call(self, fn: Callable[[str], T], *, reference: str | None = None) -> T:
        """Run ``fn(address)`` against the current address, failing over on unavailability."""
        last: VaultkitError | None = None
        n = len(self.addresses)
        start = self._index
        for step in range(n):
            idx = (start + step) % n
            try:
                try:
                    result = fn(self.addresses[idx])
                except VaultHTTPError as exc:
                    raise from_status(exc.status, exc.errors,
                                      {"source": "vault", "reference": reference}) from exc
            except UnavailableError as exc:
                if exc.reference is None:
                    exc.reference = reference
                last = exc
                if isinstance(exc, DeadlineExceededError):
                    break  # the time is spent: another address would not get any
                continue
            except VaultkitError as exc:
                if exc.reference is None:
                    exc.reference = reference
                raise
            if idx != self._index:
                self._index = idx
            return result
        if last is None:  # pragma: no cover - addresses is never empty
            raise UnavailableError("no Vault address configured", source="vault")
        raise last

    def _deadline(self, timeout: float | None) -> float:
        limit = self.settings.timeout
        seconds = limit if timeout is None else max(0.05, min(timeout, limit))
        return time.monotonic() + seconds

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                reference: str | None = None, authenticated: bool = True,
                timeout: float | None = None,
                params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Call ``/v1/<path>`` and return the JSON body (``{}`` when there is none).

        ``timeout`` (seconds) caps this one request, connect to last byte, so a boot
        deadline also bounds a server that accepts connections and never answers.
        """
        if authenticated and self._token is None:
            self.login()
        deadline = self._deadline(timeout)
        try:
            return self._request_once(method, path, json=json, reference=reference,
                                      deadline=deadline, params=params)
        except AccessDeniedError:
            if not authenticated or not self._may_relogin():
                raise
        # The token may have expired (Vault answers 403 for that, too): log in again, once.
        self._token = None
        self.login()
        return self._request_once(method, path, json=json, reference=reference,
                                  deadline=self._deadline(timeout), params=params)

    def _may_relogin(self) -> bool:
        if self.auth_method in (None, "token"):
            return False  # a fixed token cannot be renewed by logging in again
        try:
            self._request_once("GET", "auth/token/lookup-self", reference="auth/token",
                               deadline=self._deadline(None))
        except (AccessDeniedError, AuthenticationError):
            return True
        except VaultkitError:
            return False
        return False  # the token is fine: the 403 is a real policy refusal

    def _request_once(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                      reference: str | None = None, deadline: float,
                      params: Mapping[str, str] | None = None,
                      redact: Sequence[str] = (), anonymous: bool = False) -> dict[str, Any]:
        target = self._target(path, params)
        body = None if json is None else _json.dumps(json).encode()

        def do(addr: str) -> dict[str, Any]:
            resp = self._exchange(addr, method, target, body, deadline, anonymous=anonymous,
                                  redact=redact)
            return self._decode(method, path, resp, redact=redact)

        return self._call(do, reference=reference or path)

    def _target(self, path: str, params: Mapping[str, str] | None) -> str:
        target = "/v1/" + quote(path.lstrip("/"), safe=_SAFE_PATH)
        return target + "?" + urlencode(params) if params else target

    # -- reads and writes

    def read(self, path: str, *, reference: str | None = None, timeout: float | None = None,
             params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, reference=reference, timeout=timeout, params=params)

    def list(self, path: str, *, reference: str | None = None,
             timeout: float | None = None) -> builtins.list[str]:
        """The key names under ``path`` (``LIST``; names ending in ``/`` are folders).

        A path with nothing under it is :class:`NotFoundError` (Vault answers 404).

        >>> vc.list("kv/metadata/app")      # doctest: +SKIP
        ['db', 'tls/']
        """
        body = self.request("GET", path, reference=reference, timeout=timeout,
                            params={"list": "true"})
        keys = (body.get("data") or {}).get("keys") or []
        return [str(k) for k in keys]

    def write(self, path: str, data: dict[str, Any] | None = None, *,
              reference: str | None = None) -> dict[str, Any]:
        return self.request("POST", path, json=data or {}, reference=reference)

    def health(self) -> dict[str, Any]:
        """``sys/health`` of the current address (sealed and standby are reported, not raised)."""
        deadline = self._deadline(None)

        def do(addr: str) -> dict[str, Any]:
            resp = self._exchange(addr, "GET", "/v1/sys/health?standbyok=true&perfstandbyok=true",
                                  None, deadline)
            return self._decode("GET", "sys/health", resp, check=False)

        return self._call(do, reference="sys/health")

    def read_many(self, paths: Sequence[str], *,
                  params: Sequence[Mapping[str, str] | None] | None = None,
                  references: Sequence[str | None] | None = None,
                  timeout: float | None = None,
                  connections: int | None = None) -> builtins.list[dict[str, Any] | VaultkitError]:
        """GET every path; each answer is the JSON body or its vaultkit error, in order.

        The reads run on a bounded thread pool (``connections``, default
        ``[vault] max_connections`` = 16) sharing the client's keep-alive pool, all
        under one deadline (``timeout`` bounds the whole batch). Fail-over and
        redirects are those of :meth:`request`; a 403 that a new login may cure is
        retried once for the whole batch.

        >>> vc.read_many(["kv/data/a", "kv/data/b"])        # doctest: +SKIP
        [{'data': {...}}, NotFoundError('HTTP 404 not found: ...')]
        """
        if self._token is None:
            self.login()
        n = len(paths)
        refs = [(references[i] if references else None) or paths[i] for i in range(n)]
        opts = [params[i] if params else None for i in range(n)]
        limit = self.settings.timeout
        deadline = time.monotonic() + (limit if timeout is None else max(0.05, timeout))
        out: builtins.list[dict[str, Any] | VaultkitError | None] = [None] * n
        self._batch(list(range(n)), paths, opts, refs, deadline, out, connections)
        denied = [i for i in range(n) if isinstance(out[i], AccessDeniedError)]
        if denied and self._may_relogin():
            self._token = None  # the token expired: log in again, once, as request() does
            self.login()
            self._batch(denied, paths, opts, refs, deadline, out, connections)
        return [r if r is not None else DeadlineExceededError(
            "Vault did not answer in time", source="vault", reference=refs[i])
            for i, r in enumerate(out)]

    def _batch(self, todo: builtins.list[int], paths: Sequence[str],
               opts: Sequence[Mapping[str, str] | None], refs: Sequence[str],
               deadline: float, out: builtins.list[dict[str, Any] | VaultkitError | None],
               connections: int | None) -> None:
        def one(i: int) -> None:
            try:
                out[i] = self._request_once("GET", paths[i], reference=refs[i],
                                            deadline=deadline, params=opts[i] or None)
            except VaultkitError as exc:
                out[i] = exc

        width = min(len(todo), max(1, connections or self.settings.max_connections),
                    max(1, self.settings.max_connections))
        if width <= 1:
            for i in todo:
                one(i)
            return
        queue: Iterator[int] = iter(todo)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                one(i)

        pool = self._threads()
        futures = [pool.submit(worker) for _ in range(width)]
        # Every request is bounded by the deadline (the transport's watchdog); the second
        # of grace covers the hand-back, not the network. Whatever is still unanswered
        # after it is reported as a timeout by read_many.
        done, _ = wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        for future in done:
            if future.exception() is not None:  # a bug, not a Vault answer: let it show
                raise future.exception()  # type: ignore[misc]

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(1, self.settings.max_connections),
                                                thread_name_prefix="vaultkit-read")
            return self._pool

    # -- auth

    @property
    def token(self) -> str | None:
        """The current client token (for code that talks to Vault itself; never log it)."""
        return self._token

    def login(self, *, method: str | None = None) -> str:
        """Log in by the auth precedence (:mod:`.auth`) or with ``method``; return its name."""
        with self._lock:
            plan = _auth.plan(self.settings, method=method)
            for name in plan.methods:
                token = _auth.run(name, self.settings, self._auth_post, self._config)
                if token is not None:
                    self._token = token
                    self.auth_method = name
                    self.auth_reason = plan.reason
                    self._headers(None)  # a token that cannot go in a header: say so now
                    return name
            raise _auth.no_credentials(plan)

    def _auth_post(self, mount: str, payload: dict[str, Any]) -> str:
        # The login's secrets (secret id, JWT) are cut out of any error text Vault echoes.
        secrets = [str(v) for k, v in payload.items() if k in ("secret_id", "jwt")]
        body = self._request_once("POST", f"auth/{mount}/login", json=payload,
                                  reference=f"auth/{mount}", deadline=self._deadline(None),
                                  redact=secrets, anonymous=True)
        token = (body.get("auth") or {}).get("client_token")
        if not token:
            raise AuthenticationError("login returned no token", source="vault",
                                      reference=f"auth/{mount}")
        return str(token)

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


__all__ = ["DEFAULT_ADDR", "MountInfo", "VaultClient", "vault_client"]
