"""A small forward proxy on 127.0.0.1: ``CONNECT`` tunnels and absolute-form requests.

It speaks plain TCP or TLS to its clients (``tls=True``: a throwaway self-signed
certificate for 127.0.0.1, :attr:`ConnectProxy.ca_path`), records what each client
asked for (:attr:`ConnectProxy.seen`: ``"CONNECT 127.0.0.1:8200"`` or
``"GET http://127.0.0.1:8200/v1/..."``) and whether it sent ``Proxy-Authorization``.
``refuse=True`` answers every request with 403.

>>> proxy = ConnectProxy(tls=True)           # doctest: +SKIP
>>> os.environ["HTTPS_PROXY"] = proxy.url    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from harness.fake_k8s import _self_signed


class ConnectProxy:
    def __init__(self, *, tls: bool = False, refuse: bool = False) -> None:
        self.tls = tls
        self.refuse = refuse
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.ca_path: str | None = None
        self._ctx: ssl.SSLContext | None = None
        if tls:
            cert, key, _ = _self_signed(Path(tempfile.mkdtemp(prefix="vk-proxy-")))
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(cert, key)
            self.ca_path = str(cert)
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            if self._ctx is not None:
                conn.settimeout(5)
                conn = self._ctx.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            self._open.append(conn)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            block, rest = head.split(b"\r\n\r\n", 1)
            lines = block.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            self.seen.append(f"{method} {target}")
            self.auth.append(next((ln.split(":", 1)[1].strip() for ln in lines[1:]
                                   if ln.lower().startswith("proxy-authorization:")), None))
            if self.refuse:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                u = urlsplit(target)
                upstream = socket.create_connection((u.hostname or "", u.port or 80), timeout=5)
                path = u.path + (f"?{u.query}" if u.query else "")
                kept = [ln for ln in lines[1:] if not ln.lower().startswith("proxy-")]
                upstream.sendall(f"{method} {path} {version}\r\n".encode("latin-1")
                                 + "\r\n".join(kept).encode("latin-1") + b"\r\n\r\n" + rest)
            upstream.settimeout(None)
            self._open.append(upstream)
            threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()
            self._pump(conn, upstream)
        except (OSError, ValueError):
            pass
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        # One connection carries requests for one upstream (what urllib3 does per pool).
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()
