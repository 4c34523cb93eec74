"""The CA's operations on a temporary home: ceremony, issuance, revocation, CRLs, inventory."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from unit.test_ca_support import CA_PW, LEAF_PW, P12_PW, ROOT_PW, TestCA, build_ca
from vaultkit import audit
from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases, builders, keys
from vaultkit.ca.inventory import Inventory, serial_hex
from vaultkit.errors import (
    CAError,
    CAKeyError,
    CertificateRejectedError,
    ConfigError,
    NotFoundError,
)


@pytest.fixture(scope="module")
def tca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return build_ca(tmp_path_factory.mktemp("ca"))


def test_home_layout_and_modes(tca: TestCA) -> None:
    home = tca.home
    for path in (home.root_cert, home.intermediate_cert, home.root_crl, home.profiles,
                 home.root_dir / ".gitignore", home.inventory):
        assert path.is_file(), path
    assert not home.intermediate_csr.exists()  # consumed by the signing
    assert stat.S_IMODE(home.intermediate_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tca.root_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.private_dir.stat().st_mode) == 0o700
    assert not any(p.suffix == ".key" for p in home.root_dir.iterdir())  # root key is offline
    assert "*.key" in (home.root_dir / ".gitignore").read_text()


def test_issue_writes_leaf_key_and_chain(tca: TestCA) -> None:
    out = tca.workdir / "issue1"
    issued = tca.ca.issue("web", profile="server", sans=["DNS:web.vaultkit.internal",
                                                           "IP:127.0.0.1"], out_dir=out)
    assert issued.cert_path == out / "web.pem" and issued.chain_path == out / "web.chain.pem"
    assert issued.key_path == out / "web.key"
    assert stat.S_IMODE(issued.key_path.stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(issued.chain_path.read_bytes())
    assert [c.subject.rfc4514_string() for c in chain] == [
        "CN=web.vaultkit.internal", "CN=vaultkit Test Issuing CA"]
    leaf = chain[0]
    key = keys.load_private_key(issued.key_path, None)
    assert keys.same_public_key(key.public_key(), leaf.public_key())  # type: ignore[arg-type]
    assert serial_hex(leaf.serial_number) == issued.serial
    record = tca.ca.inventory.get(issued.serial)
    assert record is not None and record.name == "web" and record.profile == "server"
    assert record.sans == ("DNS:web.vaultkit.internal", "IP:127.0.0.1")
    life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert life.days == 90
    report = tca.ca.verify(issued.cert_path, purpose="server")
    assert report["ok"] and report["path_builder"] == "ok"
    with pytest.raises(CertificateRejectedError, match="clientAuth"):
        tca.ca.verify(issued.cert_path, purpose="client")


def test_duplicate_name_and_bad_options(tca: TestCA) -> None:
    tca.ca.issue("dup", profile="client", sans=["DNS:dup.vaultkit.internal"],
                 out_dir=tca.workdir / "dup")
    with pytest.raises(CAError, match="already has a valid certificate"):
        tca.ca.issue("dup", profile="client", sans=["DNS:dup.vaultkit.internal"],
                     out_dir=tca.workdir / "dup")
    with pytest.raises(ConfigError, match="max_days"):
        tca.ca.issue("long", profile="client", sans=["DNS:l.vaultkit.internal"], days=1000)
    with pytest.raises(ConfigError, match="single-label"):
        tca.ca.issue("lh", profile="server", sans=["DNS:localhost"])
    with pytest.raises(CAError, match="outside"):
        tca.ca.issue("evil", profile="server", sans=["DNS:evil.example.com"])
    with pytest.raises(ConfigError, match="unknown profile"):
        tca.ca.issue("p", profile="codesign", sans=["DNS:p.vaultkit.internal"])
    with pytest.raises(ConfigError, match="name"):
        tca.ca.issue("../escape", profile="server", sans=["DNS:e.vaultkit.internal"])


def test_csr_keeps_key_with_requester(tca: TestCA) -> None:
    key = keys.generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ignored")]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("req.vaultkit.internal")]),
                          critical=False)
           .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    out = tca.workdir / "csr"
    issued = tca.ca.issue("req", profile="both", csr=csr.public_bytes(serialization.Encoding.PEM),
                          out_dir=out)
    assert issued.key_path is None and not (out / "req.key").exists()
    assert issued.sans == ("DNS:req.vaultkit.internal",)
    leaf = x509.load_pem_x509_certificate(issued.cert_path.read_bytes())
    assert keys.same_public_key(leaf.public_key(), key.public_key())  # type: ignore[arg-type]
    assert tca.ca.inventory.get(issued.serial).key_holder == "requester"  # type: ignore[union-attr]
    # Renewal re-certifies the requester's key (it never had ours), as `step ca renew` does.
    renewed = tca.ca.renew("req", out_dir=out)
    assert renewed.key_path is None and renewed.renewed_from == issued.serial
    again = x509.load_pem_x509_certificate(renewed.cert_path.read_bytes())
    assert keys.same_public_key(again.public_key(), key.public_key())  # type: ignore[arg-type]


def test_revoke_regenerates_crl_and_verify_rejects(tca: TestCA) -> None:
    out = tca.workdir / "rev"
    issued = tca.ca.issue("gone", profile="client", sans=["DNS:gone.vaultkit.internal"],
                          out_dir=out)
    before = x509.load_pem_x509_crl(tca.home.intermediate_crl.read_bytes())
    assert tca.ca.revoke("gone", reason="keyCompromise") == [issued.serial]
    after = x509.load_pem_x509_crl(tca.home.intermediate_crl.read_bytes())
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = after.get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise)
    assert after.next_update_utc is not None
    inter = tca.ca.intermediate_cert()
    assert after.is_signature_valid(inter.public_key())  # type: ignore[arg-type]
    assert tca.home.intermediate_crl.with_suffix(".crl.der").is_file()
    with pytest.raises(CertificateRejectedError, match="revoked"):
        tca.ca.verify(issued.cert_path, purpose="client")
    with pytest.raises(CAError, match="already revoked"):
        tca.ca.revoke(issued.serial)
    with pytest.raises(NotFoundError):
        tca.ca.revoke("no-such-cert")
    with pytest.raises(CAError, match="intermediate"):
        tca.ca.revoke(serial_hex(inter.serial_number))


def test_revoke_by_serial_as_openssl_prints_it(tca: TestCA) -> None:
    issued = tca.ca.issue("byserial", profile="server", sans=["DNS:s.vaultkit.internal"],
                          out_dir=tca.workdir / "ser")
    openssl_style = f"{int(issued.serial, 16):X}"
    assert tca.ca.revoke(openssl_style, reason="superseded", regenerate_crl=False) == [
        issued.serial]
    assert tca.ca.inventory.get(issued.serial).status == "revoked"  # type: ignore[union-attr]


def test_renew_keeps_profile_and_sans(tca: TestCA) -> None:
    out = tca.workdir / "renew"
    first = tca.ca.issue("svc", profile="both", sans=["DNS:svc.vaultkit.internal"], out_dir=out)
    second = tca.ca.renew("svc", out_dir=out)
    assert second.serial != first.serial and second.sans == first.sans
    assert tca.ca.inventory.get(second.serial).renewed_from == first.serial  # type: ignore[union-attr]
    assert [e["action"] for e in tca.ca.inventory.events() if e["serial"] == second.serial] == [
        "renew"]


def test_list_and_expiring(tca: TestCA) -> None:
    tca.ca.issue("soon", profile="client", sans=["DNS:soon.vaultkit.internal"], days=3,
                 out_dir=tca.workdir / "soon")
    names = {r.name for r in tca.ca.list(expiring_days=10)}
    assert "soon" in names and "web" not in names
    everything = {r.kind for r in tca.ca.list()}
    assert everything == {"root", "intermediate", "leaf"}
    json.dumps([r.summary() for r in tca.ca.list()])


def test_p12_modern_and_legacy(tca: TestCA) -> None:
    out = tca.workdir / "p12"
    tca.ca.issue("phone", profile="client", sans=["DNS:phone.vaultkit.internal"], out_dir=out,
                 p12=True)
    modern = (out / "phone.p12").read_bytes()
    _key, cert, extra = pkcs12.load_key_and_certificates(modern, P12_PW.encode())
    assert cert is not None and len(extra) == 1
    legacy = tca.ca.export_p12("phone", directory=out, out=out / "legacy.p12", legacy=True)
    assert stat.S_IMODE(legacy.stat().st_mode) == 0o600
    _key2, cert2, _ = pkcs12.load_key_and_certificates(legacy.read_bytes(), P12_PW.encode())
    assert cert2 == cert


def test_encrypted_leaf_key(tca: TestCA) -> None:
    issued = tca.ca.issue("enc", profile="server", sans=["DNS:enc.vaultkit.internal"],
                          out_dir=tca.workdir / "enc", encrypt_key=True)
    assert issued.key_path is not None
    assert b"ENCRYPTED" in issued.key_path.read_bytes()
    from vaultkit.secret import Secret

    assert keys.load_private_key(issued.key_path, Secret(LEAF_PW.encode()))


def test_audit_events_hold_no_key_material(tca: TestCA, tmp_path: Path, leak_canary) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "audit.jsonl"
    audit.configure(log)
    try:
        tca.ca.issue("audited", profile="server", sans=["DNS:audited.vaultkit.internal"],
                     out_dir=tmp_path / "out")
        tca.ca.revoke("audited")
    finally:
        audit.configure(None)
    for pw in (ROOT_PW, CA_PW):
        leak_canary.add(pw)
    key_pem = (tmp_path / "out" / "audited.key").read_text()
    key_body = "".join(key_pem.splitlines()[1:-1])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    actions = [e["action"] for e in events]
    assert [a for a in actions if a != "ca.crl"] == ["ca.issue", "ca.revoke"]
    assert "ca.crl" in actions  # the revocation re-signed the CRL
    events = [e for e in events if e["action"] != "ca.crl"]
    assert events[0]["target"] == "audited" and events[0]["profile"] == "server"
    text = log.read_text()
    assert key_body[:40] not in text and "PRIVATE" not in text
    leak_canary.watch_path(log)


def test_issuance_never_needs_the_root_key(tmp_path: Path) -> None:
    tca = build_ca(tmp_path)
    tca.root_key.unlink()  # the offline media is gone
    ca = CertificateAuthority(tca.home, passphrases=StaticPassphrases({"intermediate": CA_PW}),
                              kdf_rounds=1000)
    issued = ca.issue("offline", profile="server", sans=["DNS:o.vaultkit.internal"],
                      out_dir=tmp_path / "o")
    ca.revoke("offline")
    assert ca.inventory.get(issued.serial).status == "revoked"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        ca.generate_crl(root_key=tca.root_key)


def test_wrong_intermediate_passphrase_and_swapped_key(tmp_path: Path) -> None:
    tca = build_ca(tmp_path)
    wrong = CertificateAuthority(tca.home, passphrases=StaticPassphrases(
        {"intermediate": "not the right passphrase"}), kdf_rounds=1000)
    with pytest.raises(CAKeyError, match="wrong passphrase"):
        wrong.issue("x", profile="server", sans=["DNS:x.vaultkit.internal"])
    other = keys.generate_private_key("ec-p384")
    keys.write_private_key(tca.home.intermediate_key, other, __import__(
        "vaultkit.secret").secret.Secret(CA_PW.encode()), kdf_rounds=1000, overwrite=True)
    with pytest.raises(CAKeyError, match="does not match"):
        tca.ca.issue("y", profile="server", sans=["DNS:y.vaultkit.internal"])


def test_intermediate_rotation(tmp_path: Path) -> None:
    tca = build_ca(tmp_path)
    old = tca.ca.intermediate_cert()
    leaf = tca.issue("before", "server", "DNS:b.vaultkit.internal")
    with pytest.raises(CAError, match="active"):
        tca.ca.create_intermediate("second")
    serial = tca.ca.revoke_intermediate(tca.root_key)
    assert serial == serial_hex(old.serial_number)
    root_crl = x509.load_pem_x509_crl(tca.home.root_crl.read_bytes())
    assert root_crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert not tca.home.intermediate_cert.exists()
    assert (tca.home.retired_dir / serial / "intermediate.pem").is_file()
    with pytest.raises(CertificateRejectedError, match="revoked"):
        tca.ca.verify(leaf, purpose="server")
    tca.ca.create_intermediate("vaultkit Test Issuing CA 2", permit_dns=["vaultkit.internal"])
    new = tca.ca.sign_intermediate(tca.root_key)
    assert new.serial_number != old.serial_number
    fresh = tca.issue("after", "server", "DNS:a.vaultkit.internal")
    assert tca.ca.verify(fresh, purpose="server")["ok"]


def test_wrong_root_passphrase_on_sign(tmp_path: Path) -> None:
    tca = build_ca(tmp_path)
    tca.ca.revoke_intermediate(tca.root_key)
    tca.ca.create_intermediate("next")
    bad = CertificateAuthority(tca.home, passphrases=StaticPassphrases(
        {"root": "definitely wrong root", "intermediate": CA_PW}), kdf_rounds=1000)
    with pytest.raises(CAKeyError):
        bad.sign_intermediate(tca.root_key)
    assert tca.home.intermediate_csr.exists() and not tca.home.intermediate_cert.exists()


def test_crl_generation_numbers_and_root(tca: TestCA) -> None:
    out = tca.ca.generate_crl(root_key=tca.root_key)
    assert set(out) == {"intermediate", "root"}
    again = tca.ca.generate_crl()
    n1 = out["intermediate"].extensions.get_extension_for_class(x509.CRLNumber).value
    n2 = again["intermediate"].extensions.get_extension_for_class(x509.CRLNumber).value
    assert n2.crl_number == n1.crl_number + 1
    assert builders.utcnow() < again["intermediate"].next_update_utc  # type: ignore[operator]


def test_init_refuses_to_clobber(tca: TestCA, tmp_path: Path) -> None:
    with pytest.raises(CAError, match="already has a root"):
        tca.ca.init_root("again", root_key_out=tmp_path / "r.key")
    fresh = CertificateAuthority(CAHome(tmp_path / "h"), passphrases=StaticPassphrases(
        {"root": "short"}), kdf_rounds=1000)
    with pytest.raises(ConfigError, match="at least 12"):
        fresh.init_root("weak", root_key_out=tmp_path / "r.key")
    assert not (tmp_path / "r.key").exists()


def test_inventory_revocation_is_an_indexed_update(tmp_path: Path) -> None:
    inv = Inventory(tmp_path / "inv.sqlite")
    plan = inv._db.execute(  # the query plan proves the primary-key lookup
        "EXPLAIN QUERY PLAN UPDATE certs SET status='revoked' WHERE serial=? "
        "AND status='valid'", ("00",)).fetchall()
    assert any("PRIMARY KEY" in str(row) or "USING" in str(row) for row in plan), plan
    crl_plan = inv._db.execute(
        "EXPLAIN QUERY PLAN SELECT serial FROM certs WHERE issuer_ski=? AND "
        "status='revoked' AND not_after>=?", ("a", "b")).fetchall()
    assert any("certs_revoked" in str(row) for row in crl_plan), crl_plan
    assert inv.integrity_check() == "ok"
