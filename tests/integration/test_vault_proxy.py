"""HTTP_PROXY/HTTPS_PROXY/NO_PROXY against real OpenBao, through the harness's CONNECT proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.connect_proxy import ConnectProxy
from harness.hostile_http import dead_address
from harness.servers import OpenBao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import VaultSettings
from vaultkit.errors import ConfigError, UnavailableError

pytestmark = pytest.mark.integration

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


@pytest.fixture
def tls_bao(openbao_tls: OpenBao) -> OpenBao:
    openbao_tls.bao("kv", "put", "secret/proxied", "v=over-tls")
    return openbao_tls


@pytest.fixture
def proxies() -> Iterator[list[ConnectProxy]]:
    made: list[ConnectProxy] = []
    yield made
    for p in made:
        p.close()


def _proxy(proxies: list[ConnectProxy], **kw: bool) -> ConnectProxy:
    proxies.append(ConnectProxy(**kw))
    return proxies[-1]


def _read(server: OpenBao, cacert: str | None = None) -> str:
    settings = VaultSettings(addr=(server.addr,), token=server.token, timeout=5,
                             cacert=cacert or server.extra.get("cacert"))
    body = VaultClient(settings).read("secret/data/proxied")
    return str(body["data"]["data"]["v"])


def test_http_proxy_forwards_absolute_form(openbao: OpenBao, proxies: list[ConnectProxy],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.bao("kv", "put", "secret/proxied", "v=plain")
    proxy = _proxy(proxies)
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:p%40ss@"))
    assert _read(openbao) == "plain"
    assert proxy.seen[0] == f"GET {openbao.addr}/v1/secret/data/proxied"
    assert proxy.auth[0] == "Basic dXNlcjpwQHNz"  # user:p@ss


def test_a_proxy_password_outside_latin_1_is_sent_as_utf_8(
        openbao: OpenBao, proxies: list[ConnectProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3's make_headers encodes Latin-1 only: "€" escaped as a raw UnicodeEncodeError
    # whose repr held the whole user:password. Go (the bao CLI) sends the UTF-8 bytes.
    import base64

    openbao.bao("kv", "put", "secret/proxied", "v=plain")
    proxy = _proxy(proxies)
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:p%E2%82%ACss@"))
    assert _read(openbao) == "plain"
    assert proxy.auth[0] == "Basic " + base64.b64encode("user:p€ss".encode()).decode()


def test_https_vault_through_a_plain_connect_proxy(tls_bao: OpenBao, proxies: list[ConnectProxy],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _proxy(proxies)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.removeprefix("http://"))  # no scheme: http
    assert _read(tls_bao) == "over-tls"
    assert proxy.seen == [f"CONNECT {tls_bao.addr.removeprefix('https://')}"]


def test_https_vault_through_a_tls_proxy(tls_bao: OpenBao, proxies: list[ConnectProxy],
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    proxy = _proxy(proxies, tls=True)
    bundle = tmp_path / "cas.pem"  # trusts both the proxy's and OpenBao's CA
    bundle.write_text(Path(proxy.ca_path or "").read_text()
                      + Path(tls_bao.extra["cacert"]).read_text())
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert _read(tls_bao, cacert=str(bundle)) == "over-tls"
    assert proxy.seen == [f"CONNECT {tls_bao.addr.removeprefix('https://')}"]
    # The proxy's certificate is checked: without its CA the TLS proxy is refused.
    with pytest.raises(Exception) as info:
        _read(tls_bao)
    assert getattr(info.value, "category", None) in ("tls", "unavailable")


def test_a_refusing_proxy_is_unavailable(tls_bao: OpenBao, proxies: list[ConnectProxy],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", _proxy(proxies, refuse=True).url)
    with pytest.raises(UnavailableError, match="proxy"):
        _read(tls_bao)


@pytest.mark.parametrize("no_proxy, used", [
    ("127.0.0.0/8", False),
    ("10.0.0.0/8, 127.0.0.1/32", False),
    ("{host}:{port}", False),
    ("{host}:1", True),
    ("localhost", True),
    ("*", False),
])
def test_no_proxy_cidr_and_host_port(openbao: OpenBao, proxies: list[ConnectProxy],
                                     monkeypatch: pytest.MonkeyPatch, no_proxy: str,
                                     used: bool) -> None:
    openbao.bao("kv", "put", "secret/proxied", "v=plain")
    proxy = _proxy(proxies)
    monkeypatch.setenv("http_proxy", proxy.url)
    host, port = openbao.addr.removeprefix("http://").split(":")
    monkeypatch.setenv("no_proxy", no_proxy.format(host=host, port=port))
    assert _read(openbao) == "plain"
    assert bool(proxy.seen) is used


def test_a_dead_proxy_is_unavailable_unless_bypassed(openbao: OpenBao,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", dead_address())
    with pytest.raises(UnavailableError):
        _read(openbao)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    openbao.bao("kv", "put", "secret/proxied", "v=plain")
    assert _read(openbao) == "plain"


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "socks5h://proxy:1080",
                                   "ftp://proxy"])
def test_other_proxy_schemes_are_refused(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch,
                                         proxy: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with pytest.raises(ConfigError, match=r"HTTP_PROXY .* scheme"):
        _read(openbao)
