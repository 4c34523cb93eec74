"""Revocation across the chain, with real handshakes, after the kill switch.

The intermediate that issued ``worker`` is replaced (revoked in the root CRL). With
both tiers' CRLs loaded, its old leaf is refused by ``vaultkit.tls`` (Python ssl) and
by ``openssl s_server -crl_check_all`` driven by ``curl --cert``; the re-issued leaf
from the new intermediate is accepted; a missing CRL is refused when the context is
built. (OpenBao's Go listener has no CRL option at all, research B4: not tested here.)
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from interop.ca_judges import binary, bundle
from interop.test_ca_handshakes import request
from unit.test_ca_support import TestCA, build_ca
from vaultkit import tls
from vaultkit.ca.rotation import replace_intermediate
from vaultkit.errors import ConfigError

pytestmark = pytest.mark.interop

HOST = "api.vaultkit.internal"


@dataclass
class Killed:
    tca: TestCA
    old: Path  # leaves of the revoked intermediate (copies)
    new: Path  # the re-issued leaves
    old_crl: Path  # the revoked intermediate's own CRL (retired)

    @property
    def all_crls(self) -> list[Path]:
        home = self.tca.home
        return [home.root_crl, home.intermediate_crl, self.old_crl]


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Killed:
    tca = build_ca(tmp_path_factory.mktemp("chain"))
    tca.issue("api", "server", f"DNS:{HOST}", "IP:127.0.0.1")
    tca.issue("worker", "client", "DNS:worker.vaultkit.internal")
    old = shutil.copytree(tca.workdir / "leaves", tca.workdir / "old-leaves")
    old_serial = f"{tca.ca.intermediate_cert().serial_number:040x}"
    result = replace_intermediate(tca.ca, tca.root_key, out_dir=tca.workdir / "leaves")
    assert {i.name for i in result.reissued} == {"api", "worker"}
    return Killed(tca, old, tca.workdir / "leaves",
                  tca.home.retired_dir / old_serial / "intermediate.crl")


def _serve(ctx: ssl.SSLContext) -> tuple[socket.socket, list[str]]:
    sock = socket.create_server(("127.0.0.1", 0))
    errors: list[str] = []

    def loop() -> None:
        while True:
            try:
                raw, _ = sock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(10)
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            except (ssl.SSLError, OSError) as exc:
                errors.append(str(exc))

    threading.Thread(target=loop, daemon=True).start()
    return sock, errors


@pytest.fixture
def server(killed: Killed) -> Iterator[tuple[int, list[str]]]:
    ctx = tls.server_context(killed.new / "api.chain.pem", killed.new / "api.key",
                             ca=killed.tca.home.root_cert, crl=killed.all_crls)
    sock, errors = _serve(ctx)
    yield sock.getsockname()[1], errors
    sock.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_python_ssl_refuses_the_revoked_intermediates_leaf(killed: Killed, server, version
                                                           ) -> None:  # type: ignore[no-untyped-def]
    port, errors = server
    root = killed.tca.home.root_cert

    def client(where: Path) -> ssl.SSLContext:
        ctx = tls.client_context(where / "worker.chain.pem", where / "worker.key", ca=root)
        ctx.minimum_version = ctx.maximum_version = version
        return ctx

    assert request(port, client(killed.new)).endswith(b"ok\n")
    with pytest.raises((ssl.SSLError, OSError)):
        request(port, client(killed.old))
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "certificate revoked" in " ".join(errors)


def test_leaf_only_crl_checking_would_accept_it(killed: Killed) -> None:
    """Control: with VERIFY_CRL_CHECK_LEAF (the old behaviour) the same client gets in."""
    ctx = tls.server_context(killed.new / "api.chain.pem", killed.new / "api.key",
                             ca=killed.tca.home.root_cert, crl=killed.all_crls)
    ctx.verify_flags &= ~ssl.VERIFY_CRL_CHECK_CHAIN
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    sock, _ = _serve(ctx)
    try:
        old = tls.client_context(killed.old / "worker.chain.pem", killed.old / "worker.key",
                                 ca=killed.tca.home.root_cert)
        assert request(sock.getsockname()[1], old).endswith(b"ok\n")
    finally:
        sock.close()


def test_missing_crl_is_refused_when_building(killed: Killed) -> None:
    home = killed.tca.home
    pair = (killed.new / "api.chain.pem", killed.new / "api.key")
    with pytest.raises(ConfigError, match="no CRL from CN=vaultkit Test Root"):
        tls.server_context(*pair, ca=home.root_cert, crl=[home.intermediate_crl])
    with pytest.raises(ConfigError, match="no CRL from CN=vaultkit Test Issuing CA G2"):
        tls.server_context(*pair, ca=home.root_cert, crl=[home.root_crl])
    with pytest.raises(ConfigError, match="no CRL from CN=vaultkit Test Issuing CA G2"):
        # the revoked intermediate's CRL does not stand in for the new one's
        tls.client_context(*pair, ca=home.root_cert, crl=[home.root_crl, killed.old_crl])
    tls.client_context(*pair, ca=home.root_cert, crl=[home.root_crl, home.intermediate_crl])


def test_curl_against_openssl_s_server_crl_check_all(killed: Killed, tmp_path: Path) -> None:
    home = killed.tca.home
    # s_server's -CAfile holds the root and every CRL: X509_STORE loads both from one PEM.
    trust = bundle(tmp_path / "trust.pem", home.root_cert, *killed.all_crls)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [binary("openssl"), "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-cert",
         str(killed.new / "api.pem"), "-key", str(killed.new / "api.key"), "-cert_chain",
         str(home.intermediate_cert), "-CAfile", str(trust), "-Verify", "2",
         "-verify_return_error", "-crl_check_all", "-purpose", "sslclient"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "s_server did not start"
                time.sleep(0.05)

        def curl(where: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [binary("curl"), "-sS", "--fail", "--max-time", "20", "--cacert",
                 str(home.root_cert), "--cert", str(where / "worker.chain.pem"), "--key",
                 str(where / "worker.key"), "--resolve", f"{HOST}:{port}:127.0.0.1",
                 f"https://{HOST}:{port}/"], capture_output=True, text=True, timeout=60,
                check=False)

        good = curl(killed.new)
        assert good.returncode == 0 and "s_server" in good.stdout, good.stderr
        bad = curl(killed.old)
        assert bad.returncode != 0
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert "certificate revoked" in output or "num=23" in output, output
