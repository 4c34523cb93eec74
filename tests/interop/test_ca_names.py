"""Name checks at issue time, each positive and negative, against pkilint and ``openssl verify``.

For every rule: what vaultkit issues passes both judges; what it refuses, forged past it
with ``cryptography``'s builder, is rejected by the judge that checks that rule (pkilint
for URI syntax, which OpenSSL does not look at; OpenSSL for name constraints, which
pkilint does not evaluate).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from interop.ca_judges import lint_cert, lint_pair, openssl_verify, pkilint
from unit.test_ca_support import TestCA, build_ca
from vaultkit.ca import builders, keys
from vaultkit.ca.certs import cert_pem
from vaultkit.errors import CAError, ConfigError

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def dns_only(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """An intermediate created with DNS permitted subtrees only (no --permit-ip)."""
    return build_ca(tmp_path_factory.mktemp("names"), permit_ip=())


def forge(tca: TestCA, where: Path, sans: list[x509.GeneralName], cn: str | None) -> Path:
    """A leaf signed by the real intermediate key, bypassing vaultkit's checks."""
    inter, signer = tca.ca.intermediate_cert(), tca.ca.signer()
    pub = keys.generate_private_key("ec-p256").public_key()
    now = builders.utcnow()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)] if cn else [])
    ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(inter.subject)
            .public_key(pub).serial_number(builders.random_serial())
            .not_valid_before(now - builders.BACKDATE).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([builders.EKU_OIDS["serverAuth"]]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=not cn)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(signer.key, hashes.SHA384()))
    where.write_bytes(cert_pem(cert))
    return where


def verify(tca: TestCA, cert: Path) -> str:
    proc = openssl_verify("-x509_strict", "-CAfile", tca.home.root_cert, "-untrusted",
                          tca.home.intermediate_cert, "-purpose", "sslserver", cert)
    return "OK" if proc.returncode == 0 else (proc.stdout + proc.stderr)


def clean(tca: TestCA, cert: Path) -> None:
    assert lint_cert(cert) == [] and lint_pair(tca.home.intermediate_cert, cert) == []
    assert verify(tca, cert) == "OK"


def test_the_dns_only_intermediate_is_clean(dns_only: TestCA) -> None:
    inter = dns_only.ca.intermediate_cert()
    nc = inter.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [str(e.value) for e in nc.excluded_subtrees or []] == ["0.0.0.0/0", "::/0"]
    assert lint_cert(dns_only.home.intermediate_cert) == []
    assert lint_pair(dns_only.home.root_cert, dns_only.home.intermediate_cert) == []


def test_uri_sans_must_be_rfc3986(dns_only: TestCA, tmp_path: Path) -> None:
    good = dns_only.issue("uri-ok", "server", "DNS:u.vaultkit.internal",
                          "URI:https://u.vaultkit.internal/api?v=1")
    # the strict variant: no spiffe:// allow-list, pkilint's URI check sees this one
    assert pkilint("lint_pkix_cert", good, allow_spiffe=False) == []
    clean(dns_only, good)
    for bad in ("https://u.vaultkit.internal/a\x00b", "https://u.vaultkit.internal/a\x01b",
                "https://u.vaultkit.internal/a b"):
        key = keys.generate_private_key("ec-p256")
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(bad)]),
                              critical=False).sign(key, hashes.SHA256()))
        with pytest.raises(ConfigError, match="URI SAN"):  # a CSR's SANs get the same checks
            dns_only.ca.issue("uri-bad", profile="server",
                              csr=csr.public_bytes(serialization.Encoding.PEM))
        forged = forge(dns_only, tmp_path / "uri.pem", [x509.DNSName("u.vaultkit.internal"),
                                                        x509.UniformResourceIdentifier(bad)],
                       "u.vaultkit.internal")
        assert "pkix.invalid_uri_syntax" in {f["code"] for f in lint_cert(forged)}


def test_dns_only_intermediate_excludes_ip_sans(dns_only: TestCA, tmp_path: Path) -> None:
    clean(dns_only, dns_only.issue("dns-ok", "server", "DNS:d.vaultkit.internal"))
    for ip in ("8.8.8.8", "127.0.0.1", "::1"):
        with pytest.raises(CAError, match="excluded"):
            dns_only.ca.issue("ip-bad", sans=["DNS:d2.vaultkit.internal", f"IP:{ip}"])
        forged = forge(dns_only, tmp_path / "ip.pem",
                       [x509.DNSName("d2.vaultkit.internal"),
                        x509.IPAddress(ipaddress.ip_address(ip))], "d2.vaultkit.internal")
        assert "error 48 " in verify(dns_only, forged)  # excluded subtree violation


def test_common_name_must_be_a_dns_san(dns_only: TestCA, tmp_path: Path) -> None:
    issued = dns_only.issue("cn-ok", "server", "DNS:c.vaultkit.internal")
    cert = x509.load_pem_x509_certificate(issued.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=c.vaultkit.internal"
    clean(dns_only, issued)
    uri_only = dns_only.issue("cn-none", "client", "URI:https://c.vaultkit.internal/w")
    assert len(x509.load_pem_x509_certificate(uri_only.read_bytes()).subject) == 0
    assert lint_cert(uri_only) == []  # empty subject, critical SAN: RFC 5280 4.2.1.6
    with pytest.raises(CAError, match="must be one of the DNS SANs"):
        builders.issue_leaf(keys.generate_private_key("ec-p256").public_key(),
                            [x509.UniformResourceIdentifier("https://c.vaultkit.internal/w")],
                            ekus=["serverAuth"], issuer=dns_only.ca.intermediate_cert(),
                            issuer_key=dns_only.ca.signer().key, days=1,
                            common_name="evil.example.com")
    # What the rule prevents: with no DNS SAN, OpenSSL holds the CN to the DNS constraints.
    forged = forge(dns_only, tmp_path / "cn.pem",
                   [x509.UniformResourceIdentifier("https://c.vaultkit.internal/w")],
                   "evil.example.com")
    assert "error 47 " in verify(dns_only, forged)  # permitted subtree violation
