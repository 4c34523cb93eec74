"""Hot reload: one running ``vaultkit.tls`` server picks up renewals, new CRLs and ignores
bad files, with no restart; a reloading client does the same for its own certificate."""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from unit.test_ca_support import TestCA, build_ca
from vaultkit import tls
from vaultkit.ca import builders, keys
from vaultkit.ca.certs import cert_pem
from vaultkit.files import atomic_write

pytestmark = pytest.mark.integration

HOST = "api.vaultkit.internal"
INTERVAL = 0.1


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers with the serial of the client certificate it saw."""

    def do_GET(self) -> None:
        der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        body = f"{x509.load_der_x509_certificate(der).serial_number:x}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tca(tmp_path: Path) -> TestCA:
    tca = build_ca(tmp_path)
    tca.issue("api", "server", f"DNS:{HOST}", "IP:127.0.0.1")
    tca.issue("worker", "client", "DNS:worker.vaultkit.internal")
    tca.issue("lost", "client", "DNS:lost.vaultkit.internal")
    return tca


@pytest.fixture
def server(tca: TestCA) -> Iterator[tls.MTLSServer]:
    leaves, home = tca.workdir / "leaves", tca.home
    srv = tls.https_server(("127.0.0.1", 0), Echo, leaves / "api.chain.pem", leaves / "api.key",
                           ca=home.root_cert, crl=[home.root_crl, home.intermediate_crl],
                           interval=INTERVAL)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _client(tca: TestCA, name: str) -> ssl.SSLContext:
    leaves = tca.workdir / "leaves"
    return tls.client_context(leaves / f"{name}.chain.pem", leaves / f"{name}.key",
                              ca=tca.home.root_cert)


def call(srv: tls.MTLSServer, ctx: ssl.SSLContext) -> tuple[int, str]:
    """(server certificate serial, what the server says the client's serial was)."""
    port = srv.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as conn:
        server_serial = x509.load_der_x509_certificate(
            conn.getpeercert(binary_form=True) or b"").serial_number
        conn.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return server_serial, data.split(b"\r\n\r\n", 1)[1].decode().strip()


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.05)


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_renewal_reaches_new_connections(tca: TestCA, server: tls.MTLSServer) -> None:
    leaves = tca.workdir / "leaves"
    worker = _client(tca, "worker")
    first, seen = call(server, worker)
    assert first == serial_of(leaves / "api.pem") and seen == f"{serial_of(leaves / 'worker.pem'):x}"
    renewed = tca.ca.renew("api", out_dir=leaves)
    eventually(lambda: call(server, worker)[0] == int(renewed.serial, 16))
    # the verify mode came through the swap: a client without a certificate is still refused
    anonymous = ssl.create_default_context(cafile=str(tca.home.root_cert))
    with pytest.raises((ssl.SSLError, OSError)):
        call(server, anonymous)


def test_revocation_and_new_crl_refuse_the_next_connection(tca: TestCA,
                                                           server: tls.MTLSServer) -> None:
    lost, worker = _client(tca, "lost"), _client(tca, "worker")
    call(server, lost)  # accepted before the revocation
    tca.ca.revoke("lost", reason="keyCompromise")

    def refused() -> bool:
        try:
            call(server, lost)
        except (ssl.SSLError, OSError):
            return True
        return False

    eventually(refused)
    assert call(server, worker)[1]  # others unaffected


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_revoked_client_cannot_resume_its_session(tca: TestCA, server: tls.MTLSServer,
                                                    version: ssl.TLSVersion) -> None:
    """A resumed session skips the certificate and CRL checks: the server must not offer one."""
    lost = _client(tca, "lost")
    lost.minimum_version = lost.maximum_version = version
    port = server.server_address[1]

    def connect(session: ssl.SSLSession | None = None) -> ssl.SSLSession | None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                lost.wrap_socket(raw, server_hostname=HOST, session=session) as conn:
            conn.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            assert conn.recv(4096)
            assert not conn.session_reused
            return conn.session

    session = connect()
    tca.ca.revoke("lost", reason="keyCompromise")
    time.sleep(2 * INTERVAL)
    with pytest.raises((ssl.SSLError, OSError)):
        connect()  # the server loads the new CRL here
    with pytest.raises((ssl.SSLError, OSError)):
        connect(session)


def test_bad_files_keep_the_last_good_material(tca: TestCA, server: tls.MTLSServer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vaultkit.tls")
    leaves = tca.workdir / "leaves"
    worker = _client(tca, "worker")
    good = serial_of(leaves / "api.pem")
    chain, key = leaves / "api.chain.pem", leaves / "api.key"
    original_chain, original_key = chain.read_bytes(), key.read_bytes()
    inter = tca.ca.intermediate_cert()
    signer = tca.ca.signer()

    def expect_kept(why: str) -> None:
        # Each connection lets the server look at its files; the old serial stays.
        eventually(lambda: call(server, worker)[0] == good and why in caplog.text)
        caplog.clear()

    atomic_write(chain, b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n")  # unparsable
    expect_kept("not reloaded")
    atomic_write(chain, original_chain)
    keys.write_private_key(key, keys.generate_private_key("ec-p256"), None, overwrite=True)
    expect_kept("KEY_VALUES_MISMATCH")  # a key that is not the certificate's
    keys.write_private_key(key, keys.generate_private_key("ec-p256"), None, overwrite=True)
    old_key = keys.load_private_key(key, None)
    expired = builders.issue_leaf(old_key.public_key(), [builders.parse_san(f"DNS:{HOST}")],
                                  ekus=["serverAuth"], issuer=inter, issuer_key=signer.key,
                                  days=1, now=builders.utcnow() - builders.dt.timedelta(days=3))
    atomic_write(chain, cert_pem(expired) + cert_pem(inter))
    expect_kept("expired")
    # and good files again are picked up
    atomic_write(chain, original_chain)
    atomic_write(key, original_key)
    renewed = tca.ca.renew("api", out_dir=leaves)
    eventually(lambda: call(server, worker)[0] == int(renewed.serial, 16))
    assert "TLS material reloaded" in caplog.text


def test_reloading_client_presents_its_renewed_certificate(tca: TestCA,
                                                           server: tls.MTLSServer) -> None:
    leaves, home = tca.workdir / "leaves", tca.home
    client = tls.ReloadingContext("client", leaves / "worker.chain.pem", leaves / "worker.key",
                                  ca=home.root_cert, interval=INTERVAL)
    assert call(server, client.current())[1] == f"{serial_of(leaves / 'worker.pem'):x}"
    renewed = tca.ca.renew("worker", out_dir=leaves)
    eventually(lambda: call(server, client.current())[1] == renewed.serial.lstrip("0"))
    assert client.reload() is False  # nothing changed since


def test_a_failing_check_still_hands_out_the_newest_crls(tca: TestCA) -> None:
    """If looking at the files fails during a handshake, the connection gets the newest good
    material, not the base context's older CRLs."""
    leaves, home = tca.workdir / "leaves", tca.home
    broken = False

    def clock() -> float:
        if broken:
            raise RuntimeError("clock failure")
        return time.monotonic()

    holder = tls.ReloadingContext("server", leaves / "api.chain.pem", leaves / "api.key",
                                  ca=home.root_cert, crl=[home.root_crl, home.intermediate_crl],
                                  interval=INTERVAL, clock=clock)
    srv = tls.MTLSServer(("127.0.0.1", 0), Echo, holder)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        lost = _client(tca, "lost")
        call(srv, lost)
        tca.ca.revoke("lost", reason="keyCompromise")
        assert holder.reload()
        broken = True
        with pytest.raises((ssl.SSLError, OSError)):
            call(srv, lost)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
