"""A scripted HTTP/1.1 peer on 127.0.0.1 that answers whatever a test tells it to.

Each request is parsed just enough to record it (:class:`Seen`: method, target,
headers, body); then ``answer(seen, conn)`` writes raw bytes to the socket, as slowly,
as often or as badly as the test wants, and returns whether to keep the connection
for another request. The server can speak TLS (a throwaway self-signed certificate
for 127.0.0.1: :attr:`HostileServer.ca_path`).

>>> srv = HostileServer(lambda seen, conn: conn.sendall(b"HTTP/1.1 200 OK\\r\\n\\r\\n"))  # doctest: +SKIP
>>> srv.url, srv.seen                                                                    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.fake_k8s import _self_signed


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Seen, socket.socket], "bool | None"]


def response(status: int = 200, body: bytes | Mapping[str, Any] = b"{}", *,
             headers: str = "", chunked: bool = False) -> bytes:
    """A well-formed answer (the bad ones are written out by each test)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}"
    if chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 7]), data[i:i + 7])
                          for i in range(0, len(data), 7))
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def replying(raw: bytes | Callable[[Seen], bytes], keep: bool = True) -> Answer:
    """An ``answer`` that sends ``raw`` (or ``raw(seen)``) in one piece."""
    def answer(seen: Seen, conn: socket.socket) -> bool:
        conn.sendall(raw(seen) if callable(raw) else raw)
        return keep
    return answer


@dataclass
class HostileServer:
    answer: Answer
    tls: bool = False
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self._ctx: ssl.SSLContext | None = None
        self.ca_path: str | None = None
        if self.tls:
            cert, key, _ = _self_signed(Path(tempfile.mkdtemp(prefix="vk-hostile-")))
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(cert, key)
            self.ca_path = str(cert)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._ctx is not None:
                conn.settimeout(5)
                conn = self._ctx.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            rfile = conn.makefile("rb")
            while not self.stopped.is_set():
                line = rfile.readline(65536)
                if not line:
                    break
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = rfile.read(int(headers.get("content-length", "0")))
                seen = Seen(method, target, headers, body)
                self.seen.append(seen)
                if not self.answer(seen, conn):
                    break
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


def dead_address() -> str:
    """An http address where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
