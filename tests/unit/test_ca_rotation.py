"""The kill switch's steps and their resumption, issuance refused under a revoked
intermediate, revocation through the issuer, and bulk renewal with one unlock."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509

from unit.test_ca_support import P12_PW, TestCA, build_ca, passphrases
from vaultkit.ca import CertificateAuthority, rotation
from vaultkit.ca.inventory import serial_hex
from vaultkit.errors import CAError, CertificateRejectedError, ConfigError, NotFoundError
from vaultkit.secret import Secret


class Counting:
    """Passphrases that count how often each key is unlocked (asked for)."""

    def __init__(self) -> None:
        self.inner = passphrases()
        self.asked: Counter[str] = Counter()

    def get(self, role: str, *, new: bool = False) -> Secret[bytes]:
        self.asked[(role, new)] += 1  # type: ignore[index]
        return self.inner.get(role, new=new)


def counted(tca: TestCA) -> tuple[CertificateAuthority, Counting]:
    tca.ca.close()
    counter = Counting()
    return CertificateAuthority(tca.home, passphrases=counter, kdf_rounds=1000), counter


def fleet(tmp_path: Path, n: int = 6) -> TestCA:
    tca = build_ca(tmp_path)
    for i in range(n):
        tca.issue(f"s{i}", ("server", "client", "both")[i % 3], f"DNS:s{i}.vaultkit.internal")
    return tca


class Crash(Exception):
    pass


def test_replace_in_one_run_unlocks_each_key_once(tmp_path: Path) -> None:
    tca = fleet(tmp_path)
    old = tca.ca.intermediate_cert()
    ca, counter = counted(tca)
    result = rotation.replace_intermediate(ca, tca.root_key, out_dir=tmp_path / "new")
    assert counter.asked == {("root", False): 1, ("intermediate", True): 1}
    assert sorted(i.name for i in result.reissued) == [f"s{i}" for i in range(6)]
    assert result.new_name == "vaultkit Test Issuing CA G2" and not result.resumed
    new = ca.intermediate_cert()
    # the same constraints, plus the IP exclusion rule's twin: IPs were permitted here
    assert (new.extensions.get_extension_for_class(x509.NameConstraints).value
            == old.extensions.get_extension_for_class(x509.NameConstraints).value)
    retired = tca.home.retired_dir / serial_hex(old.serial_number)
    assert {p.name for p in retired.iterdir()} >= {"intermediate.pem", "intermediate.key"}
    root_crl = x509.load_pem_x509_crl(tca.home.root_crl.read_bytes())
    assert root_crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert tca.home.intermediate_crl.is_file()
    # every leaf of the old intermediate now reads as revoked through it; the new ones valid
    leaves = [r for r in ca.list() if r.kind == "leaf"]
    olds = [r for r in leaves if r.renewed_from is None]
    assert len(olds) == 6 and all(r.status == "revoked" and r.revoked_via_issuer for r in olds)
    assert all(r.status == "valid" and not r.revoked_via_issuer
               for r in leaves if r.renewed_from)
    # and `ca verify` says why the old certificate is refused; the new one passes
    with pytest.raises(CertificateRejectedError,
                       match=r"its issuer CN=vaultkit Test Issuing CA .* is revoked"):
        ca.verify(tca.workdir / "leaves" / "s0.pem")
    assert ca.verify(tmp_path / "new" / "s0.pem", purpose="server")["ok"]
    ca.close()


@pytest.mark.parametrize("crash_at", ["after revoke", "after new intermediate", "after 2 batches"])
def test_replace_resumes_without_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            crash_at: str) -> None:
    tca = fleet(tmp_path)
    ca = tca.ca
    real_new_signer, real_issue_batch = rotation._new_signer, ca.issue_batch
    issued = []

    def crashing_new_signer(*args, **kw):  # type: ignore[no-untyped-def]
        if crash_at == "after revoke":
            raise Crash
        signer = real_new_signer(*args, **kw)
        if crash_at == "after new intermediate":
            raise Crash
        return signer

    def crashing_issue_batch(*args, **kw):  # type: ignore[no-untyped-def]
        if len(issued) == 4:  # two batches of 2 went through, the third dies
            raise Crash
        issued.extend(real_issue_batch(*args, **kw))
        return issued[-2:]

    monkeypatch.setattr(rotation, "_new_signer", crashing_new_signer)
    monkeypatch.setattr(rotation, "BATCH", 2)
    monkeypatch.setattr(ca, "issue_batch", crashing_issue_batch)
    with pytest.raises(Crash):
        rotation.replace_intermediate(ca, tca.root_key, out_dir=tmp_path / "new")
    monkeypatch.undo()
    # a copy of the dead process's view is gone; a fresh one finishes the job
    ca.close()
    again = CertificateAuthority(tca.home, passphrases=passphrases(), kdf_rounds=1000)
    result = rotation.replace_intermediate(again, tca.root_key, out_dir=tmp_path / "new")
    assert result.resumed
    names = [i.name for i in result.reissued] + [r.name for r in result.earlier]
    assert sorted(names) == [f"s{i}" for i in range(6)]
    leaves = [r for r in again.list() if r.kind == "leaf"]
    assert Counter(r.renewed_from for r in leaves if r.renewed_from).most_common(1)[0][1] == 1
    inters = [r for r in again.list() if r.kind == "intermediate"]
    assert sorted(r.status for r in inters) == ["revoked", "valid"]
    for name in names:  # the files on disk are the re-issued certificates
        cert = x509.load_pem_x509_certificate((tmp_path / "new" / f"{name}.pem").read_bytes())
        assert cert.issuer == again.intermediate_cert().subject
    again.close()


def test_issuing_under_a_revoked_intermediate_is_refused_whatever_the_files(tmp_path: Path
                                                                            ) -> None:
    tca = fleet(tmp_path, n=1)
    old = tca.ca.intermediate_cert()
    tca.ca.revoke_intermediate(tca.root_key)
    retired = tca.home.retired_dir / serial_hex(old.serial_number)
    shutil.copy(retired / "intermediate.pem", tca.home.intermediate_cert)
    shutil.copy(retired / "intermediate.key", tca.home.intermediate_key)
    with pytest.raises(CAError, match=r"revoked.*intermediate replace"):
        tca.ca.issue("back", sans=["DNS:back.vaultkit.internal"])
    with pytest.raises(NotFoundError, match="no valid certificate"):
        tca.ca.renew("s0")  # its issuer is revoked, so it is too
    # the root CRL alone is enough too (an inventory restored from an old backup)
    tca.ca.close()
    with sqlite3.connect(tca.home.inventory) as db:
        db.execute("UPDATE certs SET status='valid' WHERE serial=?",
                   (serial_hex(old.serial_number),))
    with pytest.raises(CAError, match="revoked"):
        tca.ca.issue("back", sans=["DNS:back.vaultkit.internal"])


def test_an_intermediate_unknown_to_the_inventory_is_refused(tmp_path: Path) -> None:
    tca = fleet(tmp_path, n=0)
    other = build_ca(tmp_path / "other")
    shutil.copy(other.home.intermediate_cert, tca.home.intermediate_cert)
    with pytest.raises(CAError, match="not signed by this CA's root"):
        tca.ca.issue("x", sans=["DNS:x.vaultkit.internal"])


def test_bulk_renewal_selects_and_unlocks_once(tmp_path: Path) -> None:
    tca = fleet(tmp_path)
    tca.issue("short", "client", "DNS:short.vaultkit.internal", days=10)
    ca, counter = counted(tca)
    out = tmp_path / "renewed"
    soon = rotation.renew_matching(ca, expiring=rotation.parse_duration("30d"), out_dir=out)
    assert [i.name for i in soon] == ["short"]
    assert rotation.renew_matching(ca, expiring=dt.timedelta(days=30), out_dir=out) == []
    servers = rotation.renew_matching(ca, profile="server", out_dir=out)
    assert sorted(i.name for i in servers) == ["s0", "s3"]
    everything = rotation.renew_matching(ca, everything=True, issuer="current", out_dir=out,
                                         revoke_old=True)
    assert sorted(i.name for i in everything) == ["s0", "s1", "s2", "s3", "s4", "s5", "short"]
    # one unlock per run, not per leaf
    assert counter.asked[("intermediate", False)] == 3
    by_serial = {r.serial: r for r in ca.list()}
    for issued in everything:
        assert by_serial[issued.renewed_from].status == "revoked"  # type: ignore[index]
        assert by_serial[issued.renewed_from].reason == "superseded"  # type: ignore[index]
        assert by_serial[issued.serial].status == "valid"
    crl = x509.load_pem_x509_crl(tca.home.intermediate_crl.read_bytes())
    assert len(crl) == 7
    with pytest.raises(ConfigError, match="say which leaves"):
        rotation.renew_matching(ca)
    with pytest.raises(ConfigError, match="duration"):
        rotation.parse_duration("soon")
    ca.close()


def test_generation_names() -> None:
    assert rotation.next_generation_name("Issuing CA") == "Issuing CA G2"
    assert rotation.next_generation_name("Issuing CA G2") == "Issuing CA G3"
    assert len(rotation.next_generation_name("x" * 64)) == 64


def test_issuing_under_an_expired_intermediate_is_refused(tmp_path: Path) -> None:
    from vaultkit.ca import builders, keys
    from vaultkit.ca.certs import cert_pem

    tca = fleet(tmp_path, n=0)
    ca = tca.ca
    root = ca.root_cert()
    root_key = ca.load_key(tca.root_key, "root", root)
    key = keys.generate_private_key("ec-p256")
    old = builders.sign_intermediate(builders.build_csr(key, "Old Issuing"), root=root,
                                     root_key=root_key, days=1,
                                     now=builders.utcnow() - dt.timedelta(days=3))
    ca.inventory.add(ca.record_of(old, name="Old Issuing", kind="intermediate", profile=None))
    tca.home.intermediate_cert.write_bytes(cert_pem(old))
    with pytest.raises(CAError, match="expired"):
        ca.issue("late", sans=["DNS:late.vaultkit.internal"])


def test_replace_with_narrower_constraints_refuses_before_revoking(tmp_path: Path) -> None:
    """A leaf the new constraints would not cover stops the kill switch before step 1;
    otherwise it would stop after the revocation, and every rerun at the same leaf."""
    tca = fleet(tmp_path, n=2)
    tca.issue("wide", "server", "DNS:wide.other.vaultkit.internal")
    old = tca.ca.intermediate_cert()
    with pytest.raises(ConfigError, match="nothing was revoked: wide"):
        rotation.replace_intermediate(tca.ca, tca.root_key, permit_dns=["s0.vaultkit.internal",
                                                                        "s1.vaultkit.internal"],
                                      permit_ip=[])
    assert tca.ca.intermediate_cert().serial_number == old.serial_number
    assert all(r.status == "valid" for r in tca.ca.list())
    done = rotation.replace_intermediate(tca.ca, tca.root_key)  # the same constraints: fine
    assert not done.resumed
    assert sorted(i.name for i in done.reissued) == ["s0", "s1", "wide"]


def test_verify_trusts_the_inventory_over_a_stale_or_skipped_crl(tmp_path: Path) -> None:
    tca = fleet(tmp_path, n=2)
    ca, leaves = tca.ca, tca.workdir / "leaves"
    ca.revoke("s0", reason="keyCompromise", regenerate_crl=False)  # `ca revoke --no-crl`
    with pytest.raises(CertificateRejectedError, match="revoked in the inventory"):
        ca.verify(leaves / "s0.pem", check_crl=True)
    assert ca.verify(leaves / "s1.pem", check_crl=False)["ok"]
    rotation.replace_intermediate(ca, tca.root_key)
    with pytest.raises(CertificateRejectedError, match="revoked through its issuer"):
        ca.verify(leaves / "s1.pem", check_crl=False)  # `ca verify --no-crl`


def test_export_after_the_kill_switch(tmp_path: Path) -> None:
    """A leaf of the revoked intermediate is not bundled (with the new intermediate, which
    did not sign it); its re-issued one is, with the intermediate that did."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    tca = fleet(tmp_path, n=1)
    ca, leaves = tca.ca, tca.workdir / "leaves"
    rotation.replace_intermediate(ca, tca.root_key, out_dir=tmp_path / "new")
    with pytest.raises(CAError, match="revoked through its issuer"):
        ca.export_p12("s0", directory=leaves)
    p12 = ca.export_p12("s0", directory=tmp_path / "new")
    _, cert, extra = pkcs12.load_key_and_certificates(p12.read_bytes(), P12_PW.encode())
    assert cert is not None and [c.subject for c in extra] == [cert.issuer]
