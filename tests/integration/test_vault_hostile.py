"""Hostile HTTP peers (Python sockets on 127.0.0.1) against VaultClient's urllib3 transport.

Each case is bounded in time and in memory (tracemalloc's peak over the call), and
ends in a vaultkit error (a BackendError; VaultProtocolError for a broken answer),
never a raw ValueError/UnicodeError, never an unbounded read.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from harness.canary import LeakCanary
from harness.hostile_http import Answer, HostileServer, Seen, replying, response
from vaultkit.backends.vault import VaultClient, VaultProtocolError
from vaultkit.config import VaultSettings
from vaultkit.errors import (
    AccessDeniedError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    UnavailableError,
)

pytestmark = pytest.mark.integration

TOKEN = "hvs.TESTTOKEN-0123456789abcdef"


@pytest.fixture
def serve() -> Iterator[Callable[..., HostileServer]]:
    servers: list[HostileServer] = []

    def make(answer: Answer, *, tls: bool = False) -> HostileServer:
        servers.append(HostileServer(answer, tls=tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def client(*addrs: str, **kw: Any) -> VaultClient:
    kw.setdefault("token", TOKEN)
    kw.setdefault("timeout", 3.0)
    return VaultClient(VaultSettings(addr=addrs, **kw))


@contextmanager
def bounded(seconds: float, mib: int = 16) -> Iterator[None]:
    """The block ends within ``seconds`` and allocates at most ``mib`` MiB at its peak."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f}s"
    assert peak < mib * 2**20, f"peak {peak / 2**20:.1f} MiB"


def forever(head: bytes, piece: bytes, every: float = 0.0) -> Answer:
    """Send ``head``, then ``piece`` again and again (every ``every`` s) until the client leaves."""
    def answer(seen: Seen, conn: socket.socket) -> bool:
        conn.sendall(head)
        for _ in range(10**7):
            conn.sendall(piece)
            if every:
                time.sleep(every)
        return False
    return answer


# --- redirects ------------------------------------------------------------------------

def test_https_to_http_redirect_never_sends_the_token(serve: Callable[..., HostileServer],
                                                      tmp_path: Any) -> None:
    plain = serve(replying(response(body={"data": {"stolen": True}})))
    https = serve(replying(lambda s: response(
        307, b"", headers=f"Location: {plain.url}{s.target}\r\n")), tls=True)
    vc = client(https.url, cacert=https.ca_path)
    with bounded(3), pytest.raises(BackendError) as info:
        vc.read("kv/data/app")
    msg = str(info.value)
    assert https.url in msg and plain.url in msg and "cleartext" in msg
    # and a login's secret id is not sent there either
    secret = tmp_path / "sid"
    secret.write_text("the-secret-id")
    secret.chmod(0o600)
    login = client(https.url, cacert=https.ca_path, token=None, role_id="r",
                   secret_id_file=str(secret))
    with pytest.raises(BackendError):
        login.login()
    assert plain.seen == []  # the http server never heard from the client
    assert [s.target for s in https.seen] == ["/v1/kv/data/app", "/v1/auth/approle/login"]


def test_cross_host_redirect_is_followed_once(serve: Callable[..., HostileServer]) -> None:
    # The standby-to-active case of Vault's Go client: one redirect, method and body kept.
    active = serve(replying(response(body={"at": "active"})))
    standby = serve(replying(lambda s: response(
        307, b"", headers=f"Location: http://localhost:{active.port}{s.target}\r\n")))
    with bounded(3):
        assert client(standby.url).write("sys/leases/renew", {"lease_id": "l1"}) == {
            "at": "active"}
    assert [(s.method, s.body) for s in active.seen] == [("POST", b'{"lease_id": "l1"}')]


def test_a_second_redirect_is_refused_naming_both_addresses(
        serve: Callable[..., HostileServer]) -> None:
    third = serve(replying(response()))
    second = serve(replying(lambda s: response(
        307, b"", headers=f"Location: {third.url}{s.target}\r\n")))
    first = serve(replying(lambda s: response(
        302, b"", headers=f"Location: {second.url}{s.target}\r\n")))
    with bounded(3), pytest.raises(BackendError) as info:
        client(first.url).read("kv/x")
    assert first.url in str(info.value) and second.url in str(info.value)
    assert third.seen == [] and len(second.seen) == 1


def test_a_redirect_loop_ends_after_one_hop(serve: Callable[..., HostileServer]) -> None:
    loop = serve(replying(lambda s: response(
        307, b"", headers=f"Location: {s.target}\r\n")))
    with bounded(3), pytest.raises(BackendError, match="only one redirect"):
        client(loop.url).read("kv/x")
    assert len(loop.seen) == 2


def test_a_redirect_to_another_scheme_is_refused(serve: Callable[..., HostileServer]) -> None:
    srv = serve(replying(response(307, b"", headers="Location: file:///etc/passwd\r\n")))
    with pytest.raises(BackendError, match="not an http or https address"):
        client(srv.url).read("kv/x")


# --- framing --------------------------------------------------------------------------

@pytest.mark.parametrize("size_line", [b"-1", b"0x10", b"1_0", b"zz", b"7fffffffffffffff", b" "])
def test_chunk_size_abuse(serve: Callable[..., HostileServer], size_line: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n"
    srv = serve(forever(head, b"A" * 65536))
    with bounded(3), pytest.raises(VaultProtocolError, match="chunk size"):
        client(srv.url).read("kv/x")


@pytest.mark.parametrize("raw, match", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n{}", "Content-Length"),  # superscript 2
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\n{}", "Content-Length"),  # Arabic 3
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}", "larger than"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
     b"0\r\n\r\n", "both Content-Length and Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
])
def test_bad_framing_is_a_protocol_error(serve: Callable[..., HostileServer], raw: bytes,
                                         match: str) -> None:
    srv = serve(replying(raw, keep=False))
    with bounded(3), pytest.raises(VaultProtocolError, match=match):
        client(srv.url).read("kv/x")


def test_non_ascii_digits_in_the_status_line(serve: Callable[..., HostileServer]) -> None:
    srv = serve(replying(b"HTTP/1.1 \xb200 OK\r\nContent-Length: 2\r\n\r\n{}", keep=False))
    with bounded(3), pytest.raises(UnavailableError) as info:
        client(srv.url).read("kv/x")
    assert info.value.__cause__ is None  # the status line's bytes are not carried along


def test_a_body_cut_short(serve: Callable[..., HostileServer]) -> None:
    raw = b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"data": {"pw": "partial-secret'
    srv = serve(replying(raw, keep=False))
    with bounded(3), pytest.raises(UnavailableError) as info:
        client(srv.url).read("kv/x")
    assert info.value.__cause__ is None and info.value.__context__ is None  # no partial body
    assert "partial-secret" not in str(info.value)


def test_a_1xx_flood(serve: Callable[..., HostileServer]) -> None:
    srv = serve(forever(b"", b"HTTP/1.1 100 Continue\r\n\r\n"))
    with bounded(3), pytest.raises(VaultProtocolError, match="interim"):
        client(srv.url).read("kv/x")


def test_a_trickling_body_hits_the_total_timeout(serve: Callable[..., HostileServer]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    srv = serve(forever(head, b"x", every=0.1))
    with bounded(2.5), pytest.raises(DeadlineExceededError):
        client(srv.url, timeout=1.0).read("kv/x")


def test_trickling_headers_hit_the_total_timeout_in_a_batch(
        serve: Callable[..., HostileServer]) -> None:
    srv = serve(forever(b"HTTP/1.1 200 OK\r\n", b"X-Slow: y\r\n", every=0.1))
    with bounded(2.5):
        out = client(srv.url).read_many(["kv/a", "kv/b", "kv/c"], timeout=1.0)
    assert all(isinstance(o, DeadlineExceededError) for o in out)


def test_a_body_that_is_not_json_or_not_utf8(serve: Callable[..., HostileServer]) -> None:
    for body in (b"<html>secret-looking-page</html>", b'{"data": "\xff\xfe"}'):
        srv = serve(replying(response(200, body)))
        with pytest.raises(BackendError) as info:
            client(srv.url).read("kv/x")
        assert "not a JSON object" in str(info.value)
        assert "secret-looking" not in str(info.value) and info.value.__cause__ is None


# --- what reaches a message --------------------------------------------------------------

def test_an_echoed_token_with_control_characters(serve: Callable[..., HostileServer],
                                                 leak_canary: LeakCanary) -> None:
    leak_canary.add(TOKEN)
    echo = (f"permission denied for \x1b[31m{TOKEN}\x1b[0m\r\nX-Injected: 1\u202e"
            + "padding " * 100)
    srv = serve(replying(response(403, {"errors": [echo]})))
    with bounded(3), pytest.raises(AccessDeniedError) as info:
        client(srv.url).read("kv/x")
    msg = str(info.value)
    assert TOKEN not in msg and "[redacted]" in msg
    assert not any(ord(c) < 32 or c in "\x7f\u202e" for c in msg)
    assert len(info.value.message) < 300
    leak_canary.watch_exception(info.value)


def test_a_non_ascii_token_is_a_config_error_that_does_not_quote_it(
        serve: Callable[..., HostileServer]) -> None:
    srv = serve(replying(response()))
    for token in ("tök-secret-value", "tok\r\nX-Evil: 1", "tok secret"):
        with pytest.raises(ConfigError) as info:
            client(srv.url, token=token).read("kv/x")
        text = repr(info.value) + str(info.value)
        assert "secret" not in text.replace("secrets", "") and "Evil" not in text
        assert info.value.__cause__ is None and info.value.__context__ is None
    assert srv.seen == []


# --- connections ---------------------------------------------------------------------------

def test_keep_alive_and_connection_close(serve: Callable[..., HostileServer]) -> None:
    srv = serve(replying(response(body={"k": "v"}, chunked=True)))
    vc = client(srv.url)
    for _ in range(4):
        assert vc.read("kv/x") == {"k": "v"}
    assert srv.connections == 1  # still in step after chunked bodies
    closing = serve(replying(response(headers="Connection: close\r\n"), keep=False))
    vc = client(closing.url)
    for _ in range(3):
        vc.read("kv/x")
    assert closing.connections == 3


def test_a_connection_closed_while_idle_is_replaced_for_reads_only(
        serve: Callable[..., HostileServer]) -> None:
    count = {"n": 0}

    def answer(seen: Seen, conn: socket.socket) -> bool:
        count["n"] += 1
        if count["n"] % 2 == 0:
            return False  # hang up without answering
        conn.sendall(response())
        return True

    srv = serve(answer)
    vc = client(srv.url)
    vc.read("kv/a")
    vc.read("kv/b")  # the kept-alive connection is closed without an answer: repeated once
    assert [s.target for s in srv.seen] == ["/v1/kv/a", "/v1/kv/b", "/v1/kv/b"]
    with pytest.raises(UnavailableError):
        vc.write("kv/c", {"x": "1"})  # a write is never repeated
    assert [s.method for s in srv.seen][3:] == ["POST"]


def test_parallel_reads_share_a_bounded_pool(serve: Callable[..., HostileServer]) -> None:
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def answer(seen: Seen, conn: socket.socket) -> bool:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.02)
        with lock:
            active["now"] -= 1
        conn.sendall(response(body={"p": seen.target}))
        return True

    srv = serve(answer)
    vc = client(srv.url, max_connections=4)
    out = vc.read_many([f"kv/s{i}" for i in range(24)])
    assert [o["p"] for o in out] == [f"/v1/kv/s{i}" for i in range(24)]  # type: ignore[index]
    assert active["max"] <= 4 and srv.connections <= 4
    vc.read_many([f"kv/s{i}" for i in range(8)])
    assert srv.connections <= 4  # kept alive and reused
    vc.close()
