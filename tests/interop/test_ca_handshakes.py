"""Real mTLS handshakes on 127.0.0.1: vaultkit.tls server and client (TLS 1.2 and 1.3), curl."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.servers import find_binary
from unit.test_ca_support import TestCA, build_ca
from vaultkit import tls
from vaultkit.errors import ConfigError, TLSError

pytestmark = pytest.mark.interop

HOST = "api.vaultkit.internal"
WORKER = "worker.vaultkit.internal"  # the client's CN: its first DNS SAN
VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass
class Pki:
    tca: TestCA
    other: TestCA
    leaves: dict[str, Path]

    def pair(self, name: str, ca: TestCA | None = None) -> tuple[Path, Path]:
        out = (ca or self.tca).workdir / "leaves"
        return out / f"{name}.chain.pem", out / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tca = build_ca(tmp_path_factory.mktemp("hs"))
    other = build_ca(tmp_path_factory.mktemp("hs-other"), name="Other")
    leaves = {
        "api": tca.issue("api", "server", f"DNS:{HOST}", "IP:127.0.0.1"),
        "worker": tca.issue("worker", "client", "DNS:worker.vaultkit.internal",
                            "URI:spiffe://vaultkit.internal/ns/prod/sa/worker"),
        "lost": tca.issue("lost", "client", "DNS:lost.vaultkit.internal"),
        "server-only": tca.issue("server-only", "server", "DNS:so.vaultkit.internal"),
    }
    other.issue("worker", "client", "DNS:worker.vaultkit.internal")
    other.issue("api", "server", f"DNS:{HOST}", "IP:127.0.0.1")
    tca.ca.revoke("lost", reason="keyCompromise")
    return Pki(tca=tca, other=other, leaves=leaves)


@dataclass
class Server:
    ctx: ssl.SSLContext
    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    errors: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.sock.close()

    def serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(10)
                    conn.recv(1024)
                    cert = conn.getpeercert() or {}
                    cn = dict(x[0] for x in cert.get("subject", ()))["commonName"]
                    self.peers.append(cn)
                    self.versions.append(conn.version() or "")
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
            except (ssl.SSLError, OSError) as exc:
                self.errors.append(str(exc))


@pytest.fixture
def serve(pki: Pki) -> Iterator[object]:
    servers: list[tuple[Server, threading.Thread]] = []

    def start(crl: bool = True, max_version: ssl.TLSVersion | None = None) -> Server:
        ctx = tls.server_context(*pki.pair("api"), ca=pki.tca.home.root_cert,
                                 crl=crls(pki) if crl else None)
        if max_version is not None:
            ctx.maximum_version = max_version
        server = Server(ctx)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(timeout=5)


def crls(pki: Pki) -> list[Path]:
    return [pki.tca.home.root_crl, pki.tca.home.intermediate_crl]


def request(port: int, ctx: ssl.SSLContext, host: str = HOST) -> bytes:
    """Handshake, send, and read: under TLS 1.3 a rejected client sees it only on read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := conn.recv(1024):
            data += chunk
        return data


def client(pki: Pki, name: str = "worker", ca: TestCA | None = None,
           version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = tls.client_context(*pki.pair(name, ca), ca=pki.tca.home.root_cert)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mutual_tls_succeeds(pki: Pki, serve, version: str) -> None:  # type: ignore[no-untyped-def]
    server = serve()
    assert request(server.port, client(pki, version=VERSIONS[version])).endswith(b"hello\n")
    assert request(server.port, client(pki, version=VERSIONS[version]),
                   host="127.0.0.1").endswith(b"hello\n")  # IP SAN
    assert server.peers == [WORKER, WORKER] and set(server.versions) == {version}


def test_context_settings(pki: Pki) -> None:
    sctx = tls.server_context(*pki.pair("api"), ca=pki.tca.home.root_cert,
                              crl=crls(pki))
    cctx = client(pki)
    for ctx in (sctx, cctx):
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    # Every CA in the chain, not just the leaf's issuer (a revoked intermediate counts).
    assert sctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN == ssl.VERIFY_CRL_CHECK_CHAIN
    assert not (cctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF)
    assert cctx.check_hostname
    with pytest.raises(ConfigError):
        tls.server_context(*pki.pair("api"), ca=pki.tca.home.root_cert,
                           minimum_version=ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ConfigError, match="not found"):
        tls.client_context(pki.tca.workdir / "nope.pem", pki.pair("worker")[1],
                           ca=pki.tca.home.root_cert)
    with pytest.raises(TLSError):  # a key that is not the certificate's
        tls.client_context(pki.pair("worker")[0], pki.pair("api")[1], ca=pki.tca.home.root_cert)


@pytest.mark.parametrize("version", list(VERSIONS))
def test_negatives_fail(pki: Pki, serve, version: str) -> None:  # type: ignore[no-untyped-def]
    v = VERSIONS[version]
    server = serve()
    no_cert = ssl.create_default_context(cafile=str(pki.tca.home.root_cert))
    no_cert.minimum_version = no_cert.maximum_version = v
    cases = {
        "no client certificate": no_cert,
        "another CA": client(pki, "worker", ca=pki.other, version=v),
        "revoked (CRL loaded)": client(pki, "lost", version=v),
        "wrong EKU (serverAuth only)": client(pki, "server-only", version=v),
    }
    for what, ctx in cases.items():
        with pytest.raises((ssl.SSLError, OSError)):
            request(server.port, ctx)
            pytest.fail(f"{what}: accepted")
    # The client can see the alert before the server thread has recorded its side of
    # the failure (seen under load with TLS 1.2): give it a moment to catch up.
    deadline = time.monotonic() + 5
    while len(server.errors) < len(cases) and time.monotonic() < deadline:
        time.sleep(0.01)
    text = " | ".join(server.errors)
    assert server.peers == []
    for reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "unable to get local issuer",
                   "certificate revoked", "unsuitable certificate purpose"):
        assert reason in text, text


def test_revoked_is_accepted_without_crl_control(pki: Pki, serve) -> None:  # type: ignore[no-untyped-def]
    """Control: the CRL, not something else, is what rejects the revoked client."""
    server = serve(crl=False)
    assert request(server.port, client(pki, "lost")).endswith(b"hello\n")


def test_client_rejects_server_from_another_ca(pki: Pki) -> None:
    ctx = tls.server_context(*pki.pair("api", pki.other), ca=pki.tca.home.root_cert)
    server = Server(ctx)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            request(server.port, client(pki))
    finally:
        server.stop()
        thread.join(timeout=5)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = find_binary("curl")
    if binary is None:
        pytest.skip("curl not installed: apt install curl")
    return subprocess.run([binary, "-sS", "--fail", "--max-time", "20", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("flags", [["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]])
def test_curl_with_client_cert(pki: Pki, serve, flags: list[str]) -> None:  # type: ignore[no-untyped-def]
    server = serve()
    chain, key = pki.pair("worker")
    url = f"https://{HOST}:{server.port}/"
    resolve = ["--resolve", f"{HOST}:{server.port}:127.0.0.1"]
    ok = curl(*flags, "--cacert", str(pki.tca.home.root_cert), "--cert", str(chain),
              "--key", str(key), *resolve, url)
    assert ok.returncode == 0 and ok.stdout == "hello\n", ok.stderr
    assert curl(*flags, "--cacert", str(pki.tca.home.root_cert), *resolve, url).returncode != 0
    ochain, okey = pki.pair("worker", pki.other)
    assert curl(*flags, "--cacert", str(pki.tca.home.root_cert), "--cert", str(ochain),
                "--key", str(okey), *resolve, url).returncode != 0
    lchain, lkey = pki.pair("lost")
    assert curl(*flags, "--cacert", str(pki.tca.home.root_cert), "--cert", str(lchain),
                "--key", str(lkey), *resolve, url).returncode != 0
    assert server.peers == [WORKER]
