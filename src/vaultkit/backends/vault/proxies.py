"""Proxies from the environment, read as ``requests`` reads them (CIDR and ``host:port`` too).

>>> proxy_for("https://vault:8200", {"HTTPS_PROXY": "proxy:3128", "NO_PROXY": "10.0.0.0/8"})
'http://proxy:3128'
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ...errors import ConfigError
from .errors import clean_text


def _env_get(env: Mapping[str, str], name: str) -> str | None:
    # Lower case first, as urllib and requests read them.
    return env.get(name.lower()) or env.get(name.upper()) or None


def bypasses_proxy(host: str, port: int, no_proxy: str | None) -> bool:
    """Whether ``NO_PROXY`` exempts ``host:port``: ``*``, a name or ``.suffix``, an IP,
    a CIDR block (``10.0.0.0/8``) or ``host:port``.

    >>> bypasses_proxy("127.0.0.1", 8200, "localhost,127.0.0.0/8")
    True
    >>> bypasses_proxy("vault.internal", 8200, "vault.internal:8201")
    False
    """
    if not no_proxy:
        return False
    host = host.strip("[]").lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.replace(" ", "").split(","):
        entry = raw.lower()
        if not entry:
            continue
        if entry == "*":
            return True
        want_port: int | None = None
        m = re.fullmatch(r"(\[[^\]]+\]|[^:]+):(\d+)", entry)
        if m:
            entry, want_port = m.group(1).strip("[]"), int(m.group(2))
            if want_port != port:
                continue
        if ip is not None and "/" in entry:
            with contextlib.suppress(ValueError):
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            continue
        name = entry.lstrip(".").rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL ``requests`` would use for ``url`` (``None``: connect directly).

    ``HTTPS_PROXY`` for https addresses, ``HTTP_PROXY`` for http ones, ``ALL_PROXY``
    for both, unless ``NO_PROXY`` exempts the host (:func:`bypasses_proxy`). A proxy
    without a scheme is ``http://``; a scheme other than http or https (``socks5://``)
    is a :class:`ConfigError`. ``HTTP_PROXY`` is ignored under CGI (``REQUEST_METHOD``
    set), as urllib does, since a client could set it through a ``Proxy:`` header.
    """
    env = os.environ if env is None else env
    u = urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    if bypasses_proxy(host, port, _env_get(env, "no_proxy")):
        return None
    proxy = _env_get(env, f"{u.scheme}_proxy")
    var = f"{u.scheme.upper()}_PROXY"
    if u.scheme == "http" and env.get("REQUEST_METHOD") and not env.get("http_proxy"):
        proxy = None
    if not proxy:
        proxy, var = _env_get(env, "all_proxy"), "ALL_PROXY"
    if not proxy:
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    scheme = proxy.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{var} uses the {clean_text(scheme, limit=20)}:// scheme; vaultkit "
                          "speaks to http:// and https:// proxies only", source="vault")
    return proxy


__all__ = ["bypasses_proxy", "proxy_for"]
