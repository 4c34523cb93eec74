"""RFC 5280 shape of every certificate, SAN rules, CSR checks, profiles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vaultkit.ca import builders, keys
from vaultkit.ca.profiles import DEFAULT_PROFILES_TOML, Profiles
from vaultkit.errors import CAError, ConfigError

REPO = Path(__file__).resolve().parents[2]


def ext(cert: x509.Certificate, cls: type) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(cls)


@pytest.fixture(scope="module")
def chain() -> tuple[x509.Certificate, keys.PrivateKey, x509.Certificate, keys.PrivateKey]:
    rkey = keys.generate_private_key("ec-p384")
    root = builders.build_root(rkey, "T Root", days=3650, path_length=1)
    ikey = keys.generate_private_key("ec-p384")
    nc = builders.name_constraints(["vaultkit.internal"], ["127.0.0.0/8"])
    csr = builders.build_csr(ikey, "T Issuing", constraints=nc)
    inter = builders.sign_intermediate(csr, root=root, root_key=rkey, days=1825,
                                       constraints=builders.requested_constraints(csr),
                                       crl_url="http://pki.vaultkit.internal/root.crl")
    return root, rkey, inter, ikey


def test_root_shape(chain) -> None:  # type: ignore[no-untyped-def]
    root = chain[0]
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ski = ext(root, x509.SubjectKeyIdentifier).value.digest
    assert ext(root, x509.AuthorityKeyIdentifier).value.key_identifier == ski
    assert root.signature_hash_algorithm.name == "sha384"  # type: ignore[union-attr]
    life = root.not_valid_after_utc - root.not_valid_before_utc
    assert dt.timedelta(days=3650) <= life <= dt.timedelta(days=3650, minutes=6)


def test_intermediate_shape(chain) -> None:  # type: ignore[no-untyped-def]
    root, _, inter, _ = chain
    bc = ext(inter, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ext(inter, x509.KeyUsage).critical
    nc = ext(inter, x509.NameConstraints)
    assert nc.critical
    assert x509.DNSName("vaultkit.internal") in nc.value.permitted_subtrees
    assert (ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(root, x509.SubjectKeyIdentifier).value.digest)
    cdp = ext(inter, x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.vaultkit.internal/root.crl"
    inter.verify_directly_issued_by(root)


@pytest.mark.parametrize(("leaf_type", "key_enc"), [("ec-p256", False), ("rsa-3072", True),
                                                    ("ed25519", False)])
def test_leaf_shape(chain, leaf_type: str, key_enc: bool) -> None:  # type: ignore[no-untyped-def]
    _, _, inter, ikey = chain
    key = keys.generate_private_key(leaf_type)
    sans = [builders.parse_san("DNS:api.vaultkit.internal"), builders.parse_san("IP:127.0.0.1")]
    leaf = builders.issue_leaf(key.public_key(), sans, ekus=["serverAuth", "clientAuth"],
                               issuer=inter, issuer_key=ikey, days=90,
                               crl_url="http://pki.vaultkit.internal/i.crl")
    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert ku.value.key_encipherment is key_enc  # never for EC/Ed25519 (pkilint rule)
    assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH,
                                                          ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not ext(leaf, x509.SubjectAlternativeName).critical
    assert ext(leaf, x509.SubjectKeyIdentifier)
    assert (ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier
            == ext(inter, x509.SubjectKeyIdentifier).value.digest)
    assert ext(leaf, x509.CRLDistributionPoints)
    # The CN is the first DNS SAN (a free-form CN could dodge DNS name constraints).
    assert leaf.subject.rfc4514_string() == "CN=api.vaultkit.internal"
    leaf.verify_directly_issued_by(inter)


def test_leaf_never_outlives_its_issuer(chain) -> None:  # type: ignore[no-untyped-def]
    root, rkey, _, _ = chain
    key = keys.generate_private_key("ec-p256")
    short = builders.sign_intermediate(builders.build_csr(key, "short"), root=root,
                                       root_key=rkey, days=2)
    leaf = builders.issue_leaf(keys.generate_private_key("ec-p256").public_key(),
                               [builders.parse_san("DNS:x.vaultkit.internal")],
                               ekus=["serverAuth"], issuer=short, issuer_key=key, days=90)
    assert leaf.not_valid_after_utc == short.not_valid_after_utc


def test_serials_are_positive_159_bit_and_distinct() -> None:
    serials = {builders.random_serial() for _ in range(2000)}
    assert len(serials) == 2000
    assert all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) >= 155  # really ~159 bits of randomness


@pytest.mark.parametrize("text", ["DNS:localhost", "DNS:db", "DNS:-bad.example", "DNS:a..b",
                                  "DNS:bücher.example", "IP:300.1.1.1", "URI:not-a-uri",
                                  "URI:spiffe:/x", "EMAIL:a@b.c", "api.example",
                                  "URI:https://a.example/x\x00y", "URI:spiffe://td/a\tb",
                                  "URI:spiffe://td/a\x7fb", "URI:https://a.example/a b",
                                  "URI:https://a.example/%zz", "URI:https://a.example/\u00e9",
                                  'URI:https://a.example/"q"', "URI:https:///no-host"])
def test_bad_sans_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        builders.parse_san(text)


def test_single_label_allowed_only_when_asked() -> None:
    assert builders.parse_san("DNS:localhost", allow_single_label=True) == x509.DNSName(
        "localhost")
    assert builders.parse_san("DNS:API.Example.COM") == x509.DNSName("api.example.com")
    assert builders.parse_san("DNS:*.svc.example") == x509.DNSName("*.svc.example")
    assert isinstance(builders.parse_san("URI:spiffe://td/ns/a"), x509.UniformResourceIdentifier)


def test_name_constraints_checked_at_issuance(chain) -> None:  # type: ignore[no-untyped-def]
    inter = chain[2]
    ok = [builders.parse_san("DNS:a.vaultkit.internal"), builders.parse_san("IP:127.0.0.9")]
    builders.check_name_constraints(ok, inter)
    for bad in ("DNS:evil.example", "IP:10.0.0.1", "DNS:vaultkit.internal.evil.example"):
        with pytest.raises(CAError, match="outside"):
            builders.check_name_constraints([builders.parse_san(bad)], inter)


def test_dns_only_intermediate_excludes_every_ip(chain) -> None:  # type: ignore[no-untyped-def]
    root, rkey, _, _ = chain
    nc = builders.name_constraints(["vaultkit.internal"], [])
    assert nc is not None and nc.permitted_subtrees == [x509.DNSName("vaultkit.internal")]
    assert nc.excluded_subtrees == [x509.IPAddress(n) for n in builders.ALL_IPS]
    # With IPs permitted explicitly, nothing is excluded.
    both = builders.name_constraints(["vaultkit.internal"], ["10.0.0.0/8"])
    assert both is not None and both.excluded_subtrees is None
    key = keys.generate_private_key("ec-p256")
    dns_only = builders.sign_intermediate(builders.build_csr(key, "D", constraints=nc),
                                          root=root, root_key=rkey, days=30, constraints=nc)
    for ip in ("IP:8.8.8.8", "IP:127.0.0.1", "IP:::1"):
        with pytest.raises(CAError, match="excluded"):
            builders.check_name_constraints([builders.parse_san(ip)], dns_only)
    # An older DNS-only intermediate without the exclusions: issuance enforces the same.
    legacy_nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("vaultkit.internal")],
                                     excluded_subtrees=None)
    legacy = builders.sign_intermediate(builders.build_csr(key, "L", constraints=legacy_nc),
                                        root=root, root_key=rkey, days=30, constraints=legacy_nc)
    with pytest.raises(CAError, match="DNS names only"):
        builders.check_name_constraints([builders.parse_san("IP:8.8.8.8")], legacy)
    builders.check_name_constraints([builders.parse_san("DNS:a.vaultkit.internal")], legacy)


def test_common_name_must_be_a_dns_san(chain) -> None:  # type: ignore[no-untyped-def]
    _, _, inter, ikey = chain
    pub = keys.generate_private_key("ec-p256").public_key()
    sans = [builders.parse_san("DNS:b.vaultkit.internal"), builders.parse_san("IP:127.0.0.1")]
    with pytest.raises(CAError, match="must be one of the DNS SANs"):
        builders.issue_leaf(pub, sans, ekus=["serverAuth"], issuer=inter, issuer_key=ikey,
                            days=1, common_name="evil.example.com")
    with pytest.raises(CAError, match="must be one of the DNS SANs"):
        builders.issue_leaf(pub, sans, ekus=["serverAuth"], issuer=inter, issuer_key=ikey,
                            days=1, common_name="127.0.0.1")
    named = builders.issue_leaf(pub, sans, ekus=["serverAuth"], issuer=inter, issuer_key=ikey,
                                days=1, common_name="b.vaultkit.internal")
    assert named.subject.rfc4514_string() == "CN=b.vaultkit.internal"
    # No DNS SAN: no CN at all, and the SAN becomes critical (RFC 5280 4.2.1.6).
    uri_only = builders.issue_leaf(pub, [builders.parse_san("URI:spiffe://vaultkit.internal/w")],
                                   ekus=["clientAuth"], issuer=inter, issuer_key=ikey, days=1)
    assert len(uri_only.subject) == 0
    assert ext(uri_only, x509.SubjectAlternativeName).critical


def test_csr_with_bad_signature_or_asking_for_ca_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_csr = (x509.CertificateSigningRequestBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(key, hashes.SHA256()))
    with pytest.raises(CAError, match="CA"):
        builders.check_csr(ca_csr)
    good = builders.build_csr(key, "fine")
    der = bytearray(good.public_bytes(__import__("cryptography").hazmat.primitives.
                                      serialization.Encoding.DER))
    der[-5] ^= 0x01  # flip a bit in the signature
    with pytest.raises(CAError, match="signature"):
        builders.check_csr(x509.load_der_x509_csr(bytes(der)))
    assert builders.check_csr(good)


def test_committed_profiles_match_builtin_defaults() -> None:
    assert (REPO / "ca" / "profiles.toml").read_text() == DEFAULT_PROFILES_TOML
    p = Profiles.load(REPO / "ca" / "profiles.toml")
    assert p.root.key_type == "ec-p384" and p.root.days == 3650 and p.root.path_length == 1
    assert p.intermediate.path_length == 0 and p.intermediate.days == 1825
    assert {n: v.ekus for n, v in p.leaves.items()} == {
        "server": ("serverAuth",), "client": ("clientAuth",),
        "both": ("serverAuth", "clientAuth")}
    assert all(v.days <= 90 for v in p.leaves.values())


def test_profiles_refuse_long_defaults_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.server]\nkey_type="ec-p256"\ndays=365\nekus=["serverAuth"]\n')
    with pytest.raises(ConfigError, match="90 days"):
        Profiles.load(path)
    path.write_text('[profiles.x]\nkey_type="ec-p256"\ndays=30\nekus=["codeSigning"]\n')
    with pytest.raises(ConfigError, match="ekus"):
        Profiles.load(path)
    path.write_text('[root]\nkey_type="dsa"\n')
    with pytest.raises(ConfigError, match="key_type"):
        Profiles.load(path)
