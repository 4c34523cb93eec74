"""Independent judges: pkilint (RFC 5280 linters) and ``openssl verify`` on a vaultkit CA."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from interop.ca_judges import binary as _bin
from interop.ca_judges import openssl_verify, pkilint
from unit.test_ca_support import CA_PW, TestCA, build_ca
from vaultkit.ca import builders, keys
from vaultkit.ca.authority import cert_pem
from vaultkit.ca.pbes2 import kdf_rounds_of, start_unlock
from vaultkit.secret import Secret

pytestmark = pytest.mark.interop

SPIFFE = "URI:spiffe://vaultkit.internal/ns/prod/sa/worker"


@pytest.fixture(scope="module", params=["ec-p384", "rsa-3072", "ed25519"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[TestCA, dict[str, Path]]:
    tca = build_ca(tmp_path_factory.mktemp(f"lint-{request.param}"), key_type=request.param)
    leaf_type = None if request.param == "ec-p384" else request.param
    certs = {
        "server": tca.issue("api", "server", "DNS:api.vaultkit.internal", "IP:127.0.0.1",
                            key_type=leaf_type),
        "client": tca.issue("worker", "client", "DNS:worker.vaultkit.internal", SPIFFE,
                            key_type=leaf_type),
        "both": tca.issue("peer", "both", "DNS:peer.vaultkit.internal", "IP:127.0.0.2",
                          key_type=leaf_type),
        "revoked": tca.issue("lost", "client", "DNS:lost.vaultkit.internal",
                             key_type=leaf_type),
    }
    tca.ca.revoke("lost", reason="keyCompromise")
    tca.ca.generate_crl(root_key=tca.root_key)
    return tca, certs


def test_pkilint_certificates(pki: tuple[TestCA, dict[str, Path]]) -> None:
    tca, certs = pki
    for path in (tca.home.root_cert, tca.home.intermediate_cert, *certs.values()):
        assert pkilint("lint_pkix_cert", path) == [], path.name


def test_pkilint_signer_signee_pairs(pki: tuple[TestCA, dict[str, Path]]) -> None:
    tca, certs = pki
    root, inter = tca.home.root_cert, tca.home.intermediate_cert
    pairs = [(root, root), (root, inter), *((inter, c) for c in certs.values())]
    for signer, signee in pairs:
        assert pkilint("lint_pkix_signer_signee_cert_chain", signer, signee) == [], signee.name


def test_pkilint_crls(pki: tuple[TestCA, dict[str, Path]]) -> None:
    tca, _certs = pki
    inter_crl = x509.load_pem_x509_crl(tca.home.intermediate_crl.read_bytes())
    assert len(inter_crl) == 1  # the test really lints a CRL with an entry
    for crl in (tca.home.root_crl, tca.home.intermediate_crl):
        assert pkilint("lint_crl", "-t", "CRL", "-p", "PKIX", crl) == [], crl.name


def test_openssl_accepts_by_purpose(pki: tuple[TestCA, dict[str, Path]]) -> None:
    tca, certs = pki
    base = ["-x509_strict", "-CAfile", tca.home.root_cert, "-untrusted",
            tca.home.intermediate_cert]
    for name, purposes in {"server": ["sslserver"], "client": ["sslclient"],
                           "both": ["sslserver", "sslclient"]}.items():
        for purpose in purposes:
            proc = openssl_verify(*base, "-purpose", purpose, certs[name])
            assert proc.returncode == 0 and ": OK" in proc.stdout, (name, purpose, proc.stderr)
    crl = ["-CRLfile", tca.home.intermediate_crl, "-crl_check"]
    assert openssl_verify(*base, *crl, "-purpose", "sslclient",
                          certs["client"]).returncode == 0
    bundle = tca.workdir / "crls.pem"
    bundle.write_bytes(tca.home.root_crl.read_bytes() + tca.home.intermediate_crl.read_bytes())
    assert openssl_verify(*base, "-CRLfile", bundle, "-crl_check_all", "-purpose", "sslserver",
                          certs["server"]).returncode == 0


def test_openssl_rejects(pki: tuple[TestCA, dict[str, Path]],
                         tmp_path: Path) -> None:
    tca, certs = pki
    base = ["-x509_strict", "-CAfile", tca.home.root_cert, "-untrusted",
            tca.home.intermediate_cert]

    def rejected(code: str, *args: str | Path) -> None:
        proc = openssl_verify(*base, *args)
        assert proc.returncode != 0, args
        assert f"error {code} " in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    # revoked, with the CRL loaded (error 23) and with no CRL at all (error 3)
    rejected("23", "-CRLfile", tca.home.intermediate_crl, "-crl_check", certs["revoked"])
    rejected("3", "-crl_check", certs["revoked"])
    # wrong EKU: a server-only cert used as a client, a client-only as a server (error 26)
    rejected("26", "-purpose", "sslclient", certs["server"])
    rejected("26", "-purpose", "sslserver", certs["client"])
    # a certificate from another CA with the same names (error 20)
    other = build_ca(tmp_path / "other")
    rejected("20", "-purpose", "sslclient",
             other.issue("worker", "client", "DNS:worker.vaultkit.internal"))
    # a name outside the intermediate's constraints, forged past vaultkit's own check (47)
    inter = tca.ca.intermediate_cert()
    ikey = keys.load_private_key(tca.home.intermediate_key, Secret(CA_PW.encode()))
    for san in ("DNS:evil.example.com", "IP:10.1.2.3"):
        forged = builders.issue_leaf(keys.generate_private_key("ec-p256").public_key(),
                                     [builders.parse_san(san)], ekus=["serverAuth"],
                                     issuer=inter, issuer_key=ikey, days=30)
        path = tmp_path / f"forged-{san[:3]}.pem"
        path.write_bytes(cert_pem(forged))
        rejected("47", "-purpose", "sslserver", path)
    # an expired certificate (error 10)
    long_ago = builders.utcnow() - dt.timedelta(days=60)
    expired = builders.issue_leaf(keys.generate_private_key("ec-p256").public_key(),
                                  [builders.parse_san("DNS:old.vaultkit.internal")],
                                  ekus=["clientAuth"], issuer=inter, issuer_key=ikey, days=30,
                                  now=long_ago)
    path = tmp_path / "expired.pem"
    path.write_bytes(cert_pem(expired))
    rejected("10", "-purpose", "sslclient", path)
    # the leaf alone, without the intermediate (error 20)
    proc = openssl_verify("-CAfile", tca.home.root_cert, certs["server"])
    assert proc.returncode != 0 and "error 20 " in proc.stdout + proc.stderr


def test_openssl_reads_the_encrypted_ca_key(pki: tuple[TestCA, dict[str, Path]]) -> None:
    tca, _ = pki
    env = {"VKPASS": CA_PW, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([_bin("openssl"), "pkey", "-in", str(tca.home.intermediate_key),
                           "-passin", "env:VKPASS", "-pubout"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    inter = tca.ca.intermediate_cert()
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(proc.stdout.encode())
    assert keys.same_public_key(pub, inter.public_key())  # type: ignore[arg-type]


def test_openssl_made_pbes2_key_is_read_by_vaultkit(tmp_path: Path) -> None:
    """The other direction: a key OpenSSL encrypts with the same PBES2 parameters loads here."""
    openssl = _bin("openssl")
    plain = tmp_path / "plain.pem"
    enc = tmp_path / "enc.key"
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(plain)], check=True, timeout=60)
    subprocess.run([openssl, "pkcs8", "-topk8", "-in", str(plain), "-out", str(enc), "-v2",
                    "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", "600000", "-passout",
                    "env:VKPASS"], check=True, timeout=60,
                   env={"VKPASS": "openssl made this one", "PATH": "/usr/bin:/bin"})
    enc.chmod(0o600)
    assert kdf_rounds_of(enc.read_bytes()) == 600_000
    loaded = keys.load_private_key(enc, Secret(b"openssl made this one"))
    # The CLI's background unlock (vaultkit.ca.pbes2) reads OpenSSL's PBES2 too.
    pending = start_unlock(enc, Secret(b"openssl made this one"))
    assert pending is not None
    assert keys.same_public_key(pending.key().public_key(), loaded.public_key())  # type: ignore[arg-type]
