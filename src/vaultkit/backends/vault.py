"""The one way vaultkit reaches Vault/OpenBao: :class:`VaultClient` and its auth chain.

hvac is wrapped here and nowhere else: callers get plain dicts back and
vaultkit errors out, never hvac types or hvac/requests exceptions.

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
node is followed by requests (the method and body are kept for 307/308).
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
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

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
)
from ..files import check_private_file

if TYPE_CHECKING:
    import hvac

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

def map_exception(exc: BaseException, *, source: str = "vault", reference: str | None = None) -> (
    VaultkitError | None
):
    """The vaultkit error for an hvac/requests exception, or ``None`` if it is neither."""
    import hvac.exceptions as hx
    import requests.exceptions as rx

    kw: dict[str, Any] = {"source": source, "reference": reference}
    name = type(exc).__name__
    if isinstance(exc, hx.VaultError):
        # Vault's error strings name paths and reasons, never values.
        detail = "; ".join(str(e) for e in (exc.errors or []))[:200] if exc.errors else name
        table: list[tuple[type[BaseException], type[VaultkitError], int | None]] = [
            (hx.InvalidRequest, ConfigError, 400),
            (hx.Unauthorized, AuthenticationError, 401),
            (hx.Forbidden, AccessDeniedError, 403),
            (hx.InvalidPath, NotFoundError, 404),
            (hx.UnsupportedOperation, ConfigError, 405),
            (hx.PreconditionFailed, UnavailableError, 412),
            (hx.RateLimitExceeded, UnavailableError, 429),
            (hx.InternalServerError, UnavailableError, 500),
            (hx.VaultNotInitialized, UnavailableError, 501),
            (hx.BadGateway, UnavailableError, 502),
            (hx.VaultDown, UnavailableError, 503),
            (hx.ParamValidationError, ConfigError, None),
            (hx.UnexpectedError, BackendError, None),
        ]
        if isinstance(exc, hx.InvalidRequest) and "non-versioned to versioned" in detail:
            # A KV v2 mount answers 400 for a few seconds while it (re)runs its upgrade check:
            # after it is enabled, and on a new raft leader after a fail-over ("Waiting for
            # the primary to upgrade..."). It says itself that service resumes shortly.
            return UnavailableError(f"{name}: {detail}", status=400, **kw)
        for cls, target, status in table:
            if isinstance(exc, cls):
                err = target(f"{name}: {detail}", status=status, **kw)
                if isinstance(exc, hx.VaultNotInitialized):
                    err.retryable = False
                return err
        return BackendError(f"{name}: {detail}", **kw)
    if isinstance(exc, rx.SSLError):
        return TLSError(f"TLS failure talking to Vault ({name})", **kw)
    if isinstance(exc, rx.Timeout):  # ConnectTimeout, ReadTimeout
        return DeadlineExceededError(f"Vault did not answer in time ({name})", **kw)
    if isinstance(exc, (rx.InvalidURL, rx.MissingSchema, rx.InvalidSchema, rx.URLRequired,
                        rx.InvalidHeader, rx.InvalidProxyURL)):
        return ConfigError(f"invalid Vault address or request ({name})", **kw)
    if isinstance(exc, (rx.ConnectionError, rx.ChunkedEncodingError, rx.ContentDecodingError,
                        rx.RetryError)):
        return UnavailableError(f"Vault unreachable ({name})", **kw)
    if isinstance(exc, rx.RequestException):
        return BackendError(f"Vault request failed ({name})", **kw)
    return None


@contextlib.contextmanager
def vault_errors(source: str = "vault", *, reference: str | None = None) -> Iterator[None]:
    """Convert hvac/requests exceptions raised in the block into vaultkit errors."""
    try:
        yield
    except VaultkitError:
        raise
    except Exception as exc:
        mapped = map_exception(exc, source=source, reference=reference)
        if mapped is None:
            raise
        raise mapped from exc


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
        self._clients: dict[str, hvac.Client] = {}
        self._token: str | None = None
        self.auth_method: str | None = None
        self._session: Any = None
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

    def _hvac(self, addr: str) -> hvac.Client:
        client = self._clients.get(addr)
        if client is None:
            import hvac
            import requests
            from requests.adapters import HTTPAdapter

            if self._session is None:
                session = requests.Session()
                # Connections are reused across threads; size the pool for load_secrets' fan-out.
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._session = session
            s = self.settings
            verify: bool | str = s.cacert if s.cacert else s.tls_verify
            cert = None
            if s.client_cert:
                if not s.client_key:
                    raise ConfigError("vault.client_cert needs vault.client_key")
                check_private_file(s.client_key)
                cert = (s.client_cert, s.client_key)
            # hvac ignores verify/cert when it is handed a session, so set them on the session.
            self._session.verify = verify
            self._session.cert = cert
            client = hvac.Client(
                url=addr, token=self._token, verify=verify, cert=cert, timeout=cast(Any, s.timeout),
                namespace=s.namespace, session=self._session,
            )
            self._clients[addr] = client
        client.token = cast(Any, self._token)
        return client

    def _call(self, fn: Callable[[hvac.Client], T], *, reference: str | None = None) -> T:
        """Run ``fn`` against the current address, failing over on unavailability."""
        last: VaultkitError | None = None
        n = len(self.addresses)
        start = self._index
        for step in range(n):
            idx = (start + step) % n
            addr = self.addresses[idx]
            try:
                with vault_errors("vault", reference=reference):
                    result = fn(self._hvac(addr))
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
        url = "/v1/" + path.lstrip("/")
        kwargs: dict[str, Any] = {}
        if json is not None:
            kwargs["json"] = json
        if timeout is not None:
            kwargs["timeout"] = max(0.05, min(timeout, self.settings.timeout))
        if params:
            kwargs["params"] = params

        def do(c: hvac.Client) -> dict[str, Any]:
            self.request_count += 1
            resp = c.adapter.request(method, url, **kwargs)
            if isinstance(resp, dict):
                return resp
            if getattr(resp, "status_code", None) == 204 or not getattr(resp, "content", b""):
                return {}
            body: dict[str, Any] = resp.json()
            return body

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

    def _cached_mount(self, path: str) -> MountInfo | None:
        for mount, info in list(self._mounts.items()):
            if path == mount or path.startswith(mount + "/"):
                return info
        return None

    def _lookup_mount(self, path: str, timeout: float | None) -> MountInfo:
        body = self.request("GET", f"sys/internal/ui/mounts/{path}", reference=path,
                            timeout=timeout)
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

    def write(self, path: str, data: dict[str, Any] | None = None, *,
              reference: str | None = None) -> dict[str, Any]:
        return self.request("POST", path, json=data or {}, reference=reference)

    def health(self) -> dict[str, Any]:
        """``sys/health`` of the current address (sealed and standby are reported, not raised)."""
        def do(c: hvac.Client) -> dict[str, Any]:
            resp = c.adapter.get("/v1/sys/health", raise_exception=False,
                                 params={"standbyok": "true", "perfstandbyok": "true"})
            if isinstance(resp, dict):
                return resp
            body: dict[str, Any] = resp.json()
            return body
        return self._call(do, reference="sys/health")

    # -- auth

    @property
    def token(self) -> str | None:
        """The current client token (for passing to hvac-free code paths; never log it)."""
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
        return self._auth_post(s.auth_mount or "kubernetes", "login",
                               {"role": s.role, "jwt": path.read_text().strip()})

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
        from . import aws as aws_backend

        cfg = self._config or Config.load()
        sess = aws_backend.session(cfg)
        creds = sess.get_credentials()
        if creds is None:
            return None
        frozen = creds.get_frozen_credentials()
        import base64
        import json as _json

        from hvac.aws_utils import SigV4Auth, generate_sigv4_auth_request

        region = cfg.aws.region or sess.region_name or "us-east-1"
        # The same signed sts:GetCallerIdentity request hvac's iam_login builds; Vault replays it.
        request = generate_sigv4_auth_request(header_value=s.aws_header_value)
        SigV4Auth(cast(str, frozen.access_key), cast(str, frozen.secret_key), frozen.token,
                  region).add_auth(request)
        headers = _json.dumps({k: [v] for k, v in request.headers.items()})
        payload = {
            "iam_http_request_method": request.method,
            "iam_request_url": base64.b64encode(request.url.encode()).decode(),
            "iam_request_body": base64.b64encode(request.body.encode()).decode(),
            "iam_request_headers": base64.b64encode(headers.encode()).decode(),
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
            self._token = None
            self.login()
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


__all__ = ["AUTH_METHODS", "MountInfo", "VaultClient", "map_exception", "vault_client", "vault_errors"]
