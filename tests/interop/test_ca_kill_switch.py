"""The kill switch end to end: 50 leaves, ``vaultkit ca intermediate replace`` killed with
SIGKILL in the middle and run again, then OpenSSL and pkilint judge everything issued."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from interop.ca_judges import bundle, lint_cert, lint_crl, lint_pair, openssl_verify, verified_ok
from unit.test_ca_support import CA_PW, ROOT_PW, TestCA, build_ca, vaultkit_cmd
from vaultkit.ca import keys
from vaultkit.ca.inventory import Inventory

pytestmark = pytest.mark.interop

LEAVES = 50
PROFILES = ("server", "client", "both")


def _inventory_count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, dict[str, str]]:
    """Intermediate 1 with 50 valid leaves (one from a CSR) and one revoked leaf."""
    tca = build_ca(tmp_path_factory.mktemp("kill"))
    ca = tca.ca
    signer = ca.signer()
    out = tca.workdir / "leaves"
    serials = {}
    for i in range(LEAVES - 1):
        request = ca.leaf_request(f"svc{i:02d}", profile=PROFILES[i % 3],
                                  sans=[f"DNS:svc{i:02d}.vaultkit.internal", "IP:127.0.0.1"])
        serials[request.name] = ca.issue_with(signer, request, out_dir=out).serial
    requester_key = keys.generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.UniformResourceIdentifier("spiffe://vaultkit.internal/ns/p/sa/csr")]),
               critical=False)
           .sign(requester_key, hashes.SHA256()))
    serials["csr"] = ca.issue("csr", profile="client", out_dir=out,
                              csr=csr.public_bytes(serialization.Encoding.PEM)).serial
    ca.issue("gone", profile="client", sans=["DNS:gone.vaultkit.internal"], out_dir=out)
    ca.revoke("gone", reason="keyCompromise")
    ca.close()
    return tca, serials


def _replace(tca: TestCA, out: Path) -> list[str]:
    return [*vaultkit_cmd(), "ca", "--home", str(tca.home.root_dir), "intermediate", "replace",
            "--root-key", str(tca.root_key), "--out", str(out), "--json"]


def test_replace_killed_and_resumed(fleet: tuple[TestCA, dict[str, str]], tmp_path: Path) -> None:
    tca, old_serials = fleet
    home = tca.home
    out = tmp_path / "reissued"
    old_inter = home.intermediate_cert.read_bytes()
    old_inter_serial = f"{x509.load_pem_x509_certificate(old_inter).serial_number:040x}"
    env = {**os.environ, "VAULTKIT_ROOT_PASSPHRASE": ROOT_PW, "VAULTKIT_CA_PASSPHRASE": CA_PW}
    reissued_sql = "SELECT count(*) FROM certs WHERE kind='leaf' AND renewed_from IS NOT NULL"

    proc = subprocess.Popen(_replace(tca, out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _inventory_count(home.inventory, reissued_sql) < 5:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    done_before = _inventory_count(home.inventory, reissued_sql)
    assert 5 <= done_before < LEAVES, "the kill must land in the middle"

    rerun = subprocess.run(_replace(tca, out), env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["resumed"] and report["revoked_intermediate"] == old_inter_serial
    names = [i["name"] for i in report["reissued"]] + [e["name"] for e in
                                                      report["reissued_earlier"]]
    assert sorted(names) == sorted(old_serials), "every valid leaf, once; not the revoked one"
    assert len(report["reissued_earlier"]) >= done_before - 1  # the kill may hit mid-leaf
    for item in report["reissued"]:
        assert Path(item["cert"]).parent == out and item["renewed_from"] == old_serials[
            item["name"]]

    inv = Inventory(home.inventory)
    try:
        for name, serial in old_serials.items():
            renewals = inv.renewals_of(serial)
            assert len(renewals) == 1, f"{name} re-issued {len(renewals)} times"
            assert renewals[0].name == name and renewals[0].status == "valid"
        # `ca list` marks the old ones revoked through their issuer
        listed = subprocess.run([*vaultkit_cmd(), "ca", "--home", str(home.root_dir), "list",
                                 "--json"], env=env, capture_output=True, text=True,
                                timeout=60, check=True)
        by_serial = {r["serial"]: r for r in json.loads(listed.stdout)}
        for serial in old_serials.values():
            assert by_serial[serial]["status"] == "revoked"
            assert by_serial[serial]["revoked_via_issuer"] is True
            assert by_serial[serial]["reason"] == "cACompromise"
        assert by_serial[old_inter_serial]["status"] == "revoked"
    finally:
        inv.close()

    # OpenSSL: every new leaf passes -x509_strict -crl_check_all with both tiers' CRLs.
    crls = bundle(tmp_path / "crls.pem", home.root_crl, home.intermediate_crl)
    new_certs = sorted(str(out / f"{n}.pem") for n in old_serials)
    proc2 = openssl_verify("-x509_strict", "-crl_check_all", "-CAfile", home.root_cert,
                           "-untrusted", home.intermediate_cert, "-CRLfile", crls, *new_certs)
    assert proc2.returncode == 0 and verified_ok(proc2) == set(new_certs), proc2.stdout[-2000:]
    # ...and the old ones are refused: their intermediate is on the root CRL (error 23).
    retired = home.retired_dir / old_inter_serial
    old_crls = bundle(tmp_path / "old-crls.pem", home.root_crl, retired / "intermediate.crl")
    for name in ("svc00", "svc01", "csr"):
        rejected = openssl_verify("-x509_strict", "-crl_check_all", "-CAfile", home.root_cert,
                                  "-untrusted", retired / "intermediate.pem", "-CRLfile",
                                  old_crls, tca.workdir / "leaves" / f"{name}.pem")
        assert rejected.returncode != 0
        assert "error 23 at 1 depth" in rejected.stdout + rejected.stderr, rejected.stdout

    # pkilint: the new intermediate, every leaf and both CRLs are clean.
    assert lint_cert(home.intermediate_cert) == []
    assert lint_pair(home.root_cert, home.intermediate_cert) == []
    for cert in new_certs:
        assert lint_cert(Path(cert)) == [], cert
        assert lint_pair(home.intermediate_cert, Path(cert)) == [], cert
    for crl in (home.root_crl, home.intermediate_crl):
        assert lint_crl(crl) == [], crl
