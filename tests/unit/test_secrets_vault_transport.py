"""VaultClient's own HTTP/1.1 transport, against scripted loopback servers (no OpenBao needed).

The real-server behaviour (KV, auth, mTLS, fail-over) is covered by the integration
tests; here each wire-level case is pinned: body framing, keep-alive reuse, stale
connections, redirects, proxies, header injection, and the status -> error mapping.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from vaultkit.backends.vault import VaultClient, VaultHTTPError, VaultProtocolError, map_exception
from vaultkit.config import VaultSettings
from vaultkit.errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    UnavailableError,
)


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen], bytes | None]


@dataclass
class FakeServer:
    """Answers each request with ``handler(seen)`` raw bytes (``None``: close without answering)."""

    handler: Handler
    sock: socket.socket = field(default_factory=socket.socket)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while line := rfile.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := rfile.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = rfile.read(int(headers.get("content-length", "0")))
                seen = Seen(method, target, headers, body)
                self.seen.append(seen)
                answer = self.handler(seen)
                if answer is None:
                    break
                conn.sendall(answer)
                if b"Connection: close" in answer.split(b"\r\n\r\n", 1)[0]:
                    break
        except OSError:
            pass
        finally:
            rfile.close()
            conn.close()

    def close(self) -> None:
        self.sock.close()


def response(status: int = 200, body: bytes | Mapping[str, Any] = b"{}", *,
             headers: str = "", chunked: bool = False) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}"
    if chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 7]), data[i:i + 7])
                          for i in range(0, len(data), 7))
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeServer]]:
    servers: list[FakeServer] = []

    def make(handler: Handler) -> FakeServer:
        servers.append(FakeServer(handler))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def client(*addrs: str, **kw: object) -> VaultClient:
    settings = VaultSettings(addr=addrs, token=str(kw.pop("token", "tok-123")),
                             **kw)  # type: ignore[arg-type]
    return VaultClient(settings)


def test_reads_json_and_sends_vault_headers(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(body={"data": {"k": "v"}}))
    vc = client(srv.addr, namespace="team-a")
    assert vc.read("kv/data/my app", params={"version": "2"}) == {"data": {"k": "v"}}
    seen = srv.seen[0]
    assert (seen.method, seen.target) == ("GET", "/v1/kv/data/my%20app?version=2")
    assert seen.headers["x-vault-token"] == "tok-123"
    assert seen.headers["x-vault-namespace"] == "team-a"
    assert seen.headers["x-vault-request"] == "true"


def test_post_sends_a_json_body(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(204, b""))
    assert client(srv.addr).write("transit/encrypt/k", {"plaintext": "eA=="}) == {}
    seen = srv.seen[0]
    assert seen.method == "POST" and json.loads(seen.body) == {"plaintext": "eA=="}
    assert seen.headers["content-type"] == "application/json"


def test_chunked_bodies_are_reassembled(serve: Callable[[Handler], FakeServer]) -> None:
    doc = {"data": {"keys": [f"key-{i}" for i in range(50)]}}
    srv = serve(lambda s: response(body=doc, chunked=True))
    vc = client(srv.addr)
    assert vc.read("kv/metadata") == doc
    assert vc.read("kv/metadata") == doc  # the connection is still in step after a chunked body
    assert srv.connections == 1


def test_keep_alive_reuses_one_connection(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response())
    vc = client(srv.addr)
    for _ in range(5):
        vc.read("kv/x")
    assert srv.connections == 1


def test_connection_close_is_honoured(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(headers="Connection: close\r\n"))
    vc = client(srv.addr)
    for _ in range(3):
        vc.read("kv/x")
    assert srv.connections == 3


def test_a_connection_closed_while_idle_is_replaced(serve: Callable[[Handler], FakeServer]
                                                     ) -> None:
    count = {"n": 0}

    def handler(seen: Seen) -> bytes | None:
        count["n"] += 1
        return response() if count["n"] % 2 else None  # every other request: hang up

    srv = serve(handler)
    vc = client(srv.addr)
    vc.read("kv/a")
    vc.read("kv/b")  # the reused connection is closed without an answer: retried once
    assert [s.target for s in srv.seen] == ["/v1/kv/a", "/v1/kv/b", "/v1/kv/b"]


def test_a_write_is_not_repeated_after_a_hang_up(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response() if s.method == "GET" else None)
    vc = client(srv.addr)
    vc.read("kv/a")
    with pytest.raises(UnavailableError) as info:
        vc.write("kv/b", {"x": "1"})
    assert isinstance(info.value.__cause__, VaultProtocolError)
    assert [s.method for s in srv.seen] == ["GET", "POST"]


def test_standby_redirect_is_followed_with_method_and_body(
        serve: Callable[[Handler], FakeServer]) -> None:
    active = serve(lambda s: response(body={"ok": True}))
    standby = serve(lambda s: response(
        307, b"", headers=f"Location: {active.addr}{s.target}\r\n"))
    assert client(standby.addr).write("sys/leases/renew", {"lease_id": "l1"}) == {"ok": True}
    assert active.seen[0].method == "POST"
    assert json.loads(active.seen[0].body) == {"lease_id": "l1"}


def test_fail_over_to_the_next_address(serve: Callable[[Handler], FakeServer]) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there: connection refused
    srv = serve(lambda s: response(body={"data": {}}))
    vc = client(f"http://127.0.0.1:{port}", srv.addr)
    assert vc.read("kv/x") == {"data": {}}
    assert vc.address == srv.addr


def test_sealed_everywhere_is_unavailable(serve: Callable[[Handler], FakeServer]) -> None:
    sealed = serve(lambda s: response(503, {"errors": ["Vault is sealed"]}))
    with pytest.raises(UnavailableError, match="Vault is sealed"):
        client(sealed.addr).read("kv/x")


@pytest.mark.parametrize("status, errors, expected", [
    (400, ["missing client token"], ConfigError),
    (400, ["Waiting for the primary to upgrade from non-versioned to versioned data"],
     UnavailableError),
    (401, [], AuthenticationError),
    (403, ["permission denied"], AccessDeniedError),
    (404, [], NotFoundError),
    (405, [], ConfigError),
    (412, [], UnavailableError),
    (429, [], UnavailableError),
    (500, ["boom"], UnavailableError),
    (502, [], UnavailableError),
    (503, ["sealed"], UnavailableError),
    (599, [], UnavailableError),
    (418, [], BackendError),
])
def test_status_mapping(serve: Callable[[Handler], FakeServer], status: int, errors: list[str],
                        expected: type[Exception]) -> None:
    srv = serve(lambda s: response(status, {"errors": errors}))
    with pytest.raises(expected) as info:
        client(srv.addr).read("kv/x")
    assert isinstance(info.value.__cause__, VaultHTTPError)
    assert getattr(info.value, "status", None) == status
    for e in errors:
        assert e in str(info.value)


def test_501_is_not_retried() -> None:
    err = map_exception(VaultHTTPError(501, ["not initialized"]))
    assert isinstance(err, UnavailableError) and err.retryable is False


def test_a_non_json_answer_is_not_quoted(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(200, b"<html>secret-looking-page</html>"))
    with pytest.raises(BackendError) as info:
        client(srv.addr).read("kv/x")
    assert "secret-looking-page" not in str(info.value)


@pytest.mark.parametrize("raw", [
    b"NOT HTTP\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 50\r\n\r\n{\"short\": 1}",
    b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
])
def test_malformed_answers_are_unavailable(serve: Callable[[Handler], FakeServer], raw: bytes
                                           ) -> None:
    srv = serve(lambda s: raw)
    with pytest.raises(UnavailableError) as info:
        client(srv.addr).read("kv/x")
    assert isinstance(info.value.__cause__, VaultProtocolError)
    srv.close()


def test_a_slow_server_hits_the_timeout(serve: Callable[[Handler], FakeServer]) -> None:
    def slow(seen: Seen) -> bytes:
        time.sleep(1.0)
        return response()

    srv = serve(slow)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        client(srv.addr).read("kv/x", timeout=0.2)
    assert time.monotonic() - started < 0.9


def test_a_line_break_in_the_token_cannot_inject_headers(
        serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response())
    with pytest.raises(ConfigError, match="line break"):
        client(srv.addr, token="tok\r\nX-Evil: 1").read("kv/x")
    assert srv.seen == []


def test_an_invalid_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        client("ftp://vault.example").read("kv/x")


def test_http_proxy_from_the_environment(serve: Callable[[Handler], FakeServer],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve(lambda s: response(body={"via": "proxy"}))
    monkeypatch.setenv("HTTP_PROXY", proxy.addr)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert client("http://vault.invalid:8200").read("kv/x") == {"via": "proxy"}
    assert proxy.seen[0].target == "http://vault.invalid:8200/v1/kv/x"  # absolute-form


def test_parallel_reads_share_a_bounded_pool(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(body={"data": {"p": s.target}}))
    vc = client(srv.addr)
    results: list[object] = []

    def work(i: int) -> None:
        results.append(vc.read(f"kv/s{i}")["data"]["p"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == sorted(f"/v1/kv/s{i}" for i in range(40))
    assert srv.connections <= 40
    vc.close()


# --- read_many: the multiplexed batch ----------------------------------------------------

def test_read_many_maps_mixed_statuses_per_request(serve: Callable[[Handler], FakeServer]
                                                   ) -> None:
    codes = {"ok": 200, "gone": 404, "deny": 403, "sealed": 503, "bad": 400}

    def handler(seen: Seen) -> bytes:
        name = seen.target.rsplit("/", 1)[1].split("?")[0]
        status = codes[name]
        return response(status, {"data": {"p": seen.target}} if status == 200
                        else {"errors": [f"{name} reason"]})

    srv = serve(handler)
    vc = client(srv.addr, namespace="team-a")
    out = vc.read_many(["kv/ok", "kv/gone", "kv/deny", "kv/sealed", "kv/bad"],
                       params=[{"version": "3"}, None, None, None, None],
                       references=["vault://kv/ok", None, None, None, None])
    assert out[0] == {"data": {"p": "/v1/kv/ok?version=3"}}
    assert [type(e) for e in out[1:]] == [NotFoundError, AccessDeniedError, UnavailableError,
                                          ConfigError]
    assert all(isinstance(e.__cause__, VaultHTTPError) for e in out[1:])  # type: ignore[union-attr]
    assert "deny reason" in str(out[2]) and out[3].status == 503  # type: ignore[union-attr]
    # the sealed one was retried once through request() (fail-over path), nothing else
    assert sorted(s.target for s in srv.seen) == sorted(
        ["/v1/kv/ok?version=3", "/v1/kv/gone", "/v1/kv/deny", "/v1/kv/sealed",
         "/v1/kv/bad", "/v1/kv/sealed"])
    assert all(s.headers["x-vault-token"] == "tok-123" for s in srv.seen)
    assert all(s.headers["x-vault-namespace"] == "team-a" for s in srv.seen)


def test_read_many_uses_a_bounded_set_of_connections(serve: Callable[[Handler], FakeServer]
                                                     ) -> None:
    srv = serve(lambda s: response(body={"data": {"p": s.target}}))
    vc = client(srv.addr)
    paths = [f"kv/s{i}" for i in range(40)]
    out = vc.read_many(paths, connections=4)
    assert [o["data"]["p"] for o in out] == [f"/v1/{p}" for p in paths]  # type: ignore[index]
    assert srv.connections == 4
    vc.read_many(paths, connections=4)  # the kept-alive connections are reused
    assert srv.connections == 4
    assert vc.read("kv/one") == {"data": {"p": "/v1/kv/one"}}  # and shared with request()
    assert srv.connections == 4
    vc.close()


def test_read_many_reassembles_chunked_bodies(serve: Callable[[Handler], FakeServer]) -> None:
    doc = {"data": {"keys": [f"key-{i}" for i in range(200)]}}
    srv = serve(lambda s: response(body=doc, chunked=True))
    vc = client(srv.addr)
    assert vc.read_many([f"kv/m{i}" for i in range(6)], connections=2) == [doc] * 6
    assert srv.connections == 2  # still in step after chunked bodies


def test_read_many_repeats_a_read_once_on_a_dropped_keep_alive(
        serve: Callable[[Handler], FakeServer]) -> None:
    count = {"n": 0}

    def handler(seen: Seen) -> bytes | None:
        count["n"] += 1
        return response() if count["n"] != 2 else None  # the reused connection hangs up once

    srv = serve(handler)
    vc = client(srv.addr)
    vc.read("kv/warm")  # one kept-alive connection in the pool
    assert vc.read_many(["kv/a"], connections=1) == [{}]
    assert [s.target for s in srv.seen] == ["/v1/kv/warm", "/v1/kv/a", "/v1/kv/a"]
    assert srv.connections == 2


def test_read_many_honours_connection_close(serve: Callable[[Handler], FakeServer]) -> None:
    srv = serve(lambda s: response(body={"p": s.target}, headers="Connection: close\r\n"))
    out = client(srv.addr).read_many([f"kv/c{i}" for i in range(5)], connections=2)
    assert [o["p"] for o in out] == [f"/v1/kv/c{i}" for i in range(5)]  # type: ignore[index]
    assert srv.connections == 5


def test_read_many_a_slow_server_hits_the_deadline(serve: Callable[[Handler], FakeServer]
                                                   ) -> None:
    def handler(seen: Seen) -> bytes:
        if "slow" in seen.target:
            time.sleep(1.0)
        return response(body={"fast": True})

    srv = serve(handler)
    started = time.monotonic()
    out = client(srv.addr).read_many(["kv/fast", "kv/slow", "kv/fast2"], timeout=0.3)
    assert time.monotonic() - started < 0.9
    assert out[0] == out[2] == {"fast": True}
    assert isinstance(out[1], DeadlineExceededError)


def test_read_many_malformed_answer_is_unavailable(serve: Callable[[Handler], FakeServer]
                                                   ) -> None:
    srv = serve(lambda s: b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n")
    out = client(srv.addr).read_many(["kv/x", "kv/y"])
    assert all(isinstance(o, UnavailableError) for o in out)
    assert isinstance(out[0].__cause__, VaultProtocolError)  # type: ignore[union-attr]


def test_read_many_follows_a_redirect_and_fails_over(serve: Callable[[Handler], FakeServer]
                                                     ) -> None:
    active = serve(lambda s: response(body={"at": "active"}))
    standby = serve(lambda s: response(307, b"", headers=f"Location: {active.addr}{s.target}\r\n"))
    assert client(standby.addr).read_many(["kv/a", "kv/b"]) == [{"at": "active"}] * 2
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there: connection refused
    vc = client(f"http://127.0.0.1:{port}", active.addr)
    assert vc.read_many([f"kv/s{i}" for i in range(5)]) == [{"at": "active"}] * 5
    assert vc.address == active.addr
    everything_down = client(f"http://127.0.0.1:{port}")
    assert all(isinstance(o, UnavailableError)
               for o in everything_down.read_many(["kv/a", "kv/b"]))


def test_read_many_warm_opens_the_next_batch_connections(serve: Callable[[Handler], FakeServer]
                                                         ) -> None:
    srv = serve(lambda s: response(body={"data": {"p": s.target}}))
    vc = client(srv.addr)
    assert vc.read_many(["kv/lookup"], warm=4) == [{"data": {"p": "/v1/kv/lookup"}}]
    # one carried the request, three were opened meanwhile (the server's accept may lag)
    for _ in range(100):
        if srv.connections == 4:
            break
        time.sleep(0.01)
    assert srv.connections == 4
    out = vc.read_many([f"kv/s{i}" for i in range(12)], connections=4)
    assert [o["data"]["p"] for o in out] == [f"/v1/kv/s{i}" for i in range(12)]  # type: ignore[index]
    assert srv.connections == 4  # the batch ran on the warmed connections
    vc.close()


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n{}",
    b"HTTP/1.0 404 Not Found\r\nContent-Length: 13\r\n\r\n{\"errors\":[]}",
    b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://b/v1/x\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",  # not quick
    b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",  # bare LF: not quick
])
def test_quick_parser_agrees_with_the_full_parser(raw: bytes) -> None:
    from vaultkit.backends.vault import _BufferReader, _quick_response, _read_response

    reader = _BufferReader(raw, True)
    status, headers, body, reusable = _read_response(reader, "GET")
    quick = _quick_response(raw)
    if quick is None:
        assert b"chunked" in raw or b"\r\n" not in raw
        return
    assert not isinstance(quick, int)
    q_status, q_headers, start, stop, q_reusable = quick
    assert (q_status, q_headers, raw[start:stop], q_reusable, stop) == (
        status, headers, body, reusable, reader.pos)
    assert _quick_response(raw[:-1] if body else raw[:len(raw) - 3]) in (None, len(raw)) or \
        not body
