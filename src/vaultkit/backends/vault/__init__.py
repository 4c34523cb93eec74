"""The one way vaultkit reaches Vault/OpenBao.

* :mod:`.client`: :class:`VaultClient` (requests, fail-over, redirects, tokens, leases,
  batch reads) and :func:`vault_client`, the shared client per config;
* :mod:`.auth`: the auth methods and which one is used (Vault Agent's precedence);
* :mod:`.mounts`: KV mount detection (``MountInfo``), cached per mount;
* :mod:`.transport`: urllib3 with a total deadline and strict framing; :mod:`.proxies`:
  ``HTTP(S)_PROXY``/``NO_PROXY`` as ``requests`` reads them;
* :mod:`.mock`: :class:`MockTransport`, the in-memory twin for unit tests;
* :mod:`.errors`: Vault's answers and transport failures as vaultkit errors.

Importing this package does not import urllib3: the transport is built on first use.
"""

from __future__ import annotations

from .auth import AUTH_METHODS
from .client import DEFAULT_ADDR, MountInfo, VaultClient, vault_client
from .errors import VaultHTTPError, VaultProtocolError, clean_text, map_exception
from .mock import MockTransport, json_response
from .transport import Request, Response, Transport

__all__ = ["AUTH_METHODS", "DEFAULT_ADDR", "MockTransport", "MountInfo", "Request", "Response",
           "Transport", "VaultClient", "VaultHTTPError", "VaultProtocolError", "clean_text",
           "json_response", "map_exception", "vault_client"]
