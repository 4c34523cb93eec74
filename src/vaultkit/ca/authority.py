"""The CA's operations: the offline root ceremony, day-to-day issuance, revocation and CRLs.

Every ``vaultkit ca`` command is one method here (the kill switch and bulk renewal,
which chain several, are in :mod:`.rotation`):

>>> from vaultkit.ca import CertificateAuthority, CAHome, StaticPassphrases
>>> ca = CertificateAuthority(CAHome(tmp), passphrases=StaticPassphrases({
...     "root": "root passphrase 1", "intermediate": "inter passphrase 1"}))  # doctest: +SKIP
>>> ca.init_root("Example Root", root_key_out="/media/usb/root.key")  # doctest: +SKIP
>>> ca.create_intermediate("Example Issuing CA", permit_dns=["svc.internal"])  # doctest: +SKIP
>>> ca.sign_intermediate("/media/usb/root.key")  # offline step  # doctest: +SKIP
>>> ca.issue("api", profile="server", sans=["DNS:api.svc.internal", "IP:10.0.0.5"])  # doctest: +SKIP

Issuance loads only the intermediate key; the root key is read only by
``init_root``, ``sign_intermediate``, ``revoke_intermediate``, the kill switch and
``generate_crl(root_key=...)``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .. import audit, files
from ..errors import CAError, CAKeyError, ConfigError, NotFoundError
from . import builders, crl, keys
from .base import Signer
from .ceremony import RootCeremony
from .certs import aki_hex, cert_pem, format_san, load_cert, load_csr, sans_of
from .home import make_dir
from .inventory import CertRecord, parse_serial, serial_hex
from .pkcs12 import pkcs12_bytes
from .profiles import LeafProfile
from .verify import verify_certificate

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Threads writing a batch's files: fsyncs overlap (the filesystem commits them together).
_WRITERS = 8


@dataclass(frozen=True)
class Issued:
    """What :meth:`CertificateAuthority.issue` wrote (paths and public facts only)."""

    name: str
    serial: str
    profile: str
    cert_path: Path
    chain_path: Path
    key_path: Path | None
    p12_path: Path | None
    not_after: dt.datetime
    fingerprint: str
    sans: tuple[str, ...]
    renewed_from: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly (the CLI's ``--json``)."""
        return {"name": self.name, "serial": self.serial, "profile": self.profile,
                "not_after": self.not_after.isoformat(), "sans": list(self.sans),
                "fingerprint": self.fingerprint, "cert": str(self.cert_path),
                "chain": str(self.chain_path), "renewed_from": self.renewed_from,
                "key": str(self.key_path) if self.key_path else None,
                "p12": str(self.p12_path) if self.p12_path else None}


@dataclass(frozen=True)
class LeafRequest:
    """A validated request for one leaf: everything issuance needs except the CA key.

    ``public_key`` is None when the CA generates the key (of ``key_type``); otherwise
    the requester holds it (``--csr``, or a renewal of such a leaf).
    """

    name: str
    profile: LeafProfile
    sans: tuple[x509.GeneralName, ...]
    days: int
    key_type: str
    public_key: keys.PublicKey | None = None
    renewed_from: str | None = None


class CertificateAuthority(RootCeremony):
    """An offline root and an online intermediate in a :class:`CAHome`.

    The root ceremony is :class:`~vaultkit.ca.ceremony.RootCeremony`, the plumbing
    :class:`~vaultkit.ca.base.CABase`; day-to-day issuance is here.
    """

    # --- day-to-day (intermediate) ------------------------------------------------------

    def signer(self) -> Signer:
        """The active intermediate with its key, after checking it may still issue.

        The inventory and the root CRL decide, not the files: an intermediate that was
        revoked (or is unknown, or does not chain to the root) is refused even if its
        certificate and key are copied back into place.
        """
        inter = self.intermediate_cert()
        root = self.root_cert()
        serial = serial_hex(inter.serial_number)
        try:
            inter.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CAError("HOME/intermediate.pem is not signed by this CA's root",
                          reference=serial) from exc
        record = self.inventory.get(serial)
        if record is None or record.kind != "intermediate":
            raise CAError("HOME/intermediate.pem is not in this CA's inventory; refusing to "
                          "issue under it", reference=serial)
        if record.status == "revoked" or self._on_root_crl(inter, root):
            raise CAError(f"the intermediate {record.name!r} is revoked ({record.reason}); "
                          "replace it: vaultkit ca intermediate replace --root-key PATH",
                          reference=serial)
        if inter.not_valid_after_utc <= builders.utcnow():
            raise CAError("the intermediate has expired; replace it: "
                          "vaultkit ca intermediate replace --root-key PATH", reference=serial)
        return Signer(inter, self.load_key(self.home.intermediate_key, "intermediate", inter))

    def _on_root_crl(self, inter: x509.Certificate, root: x509.Certificate) -> bool:
        try:
            root_crl = x509.load_pem_x509_crl(self.home.root_crl.read_bytes())
        except (OSError, ValueError):
            return False  # the inventory is authoritative; the CRL is a second opinion
        if not root_crl.is_signature_valid(root.public_key()):  # type: ignore[arg-type]
            return False
        return root_crl.get_revoked_certificate_by_serial_number(inter.serial_number) is not None

    def leaf_request(self, name: str, *, profile: str = "server", sans: Iterable[str] = (),
                     days: int | None = None, key_type: str | None = None,
                     csr: bytes | None = None, allow_single_label: bool | None = None,
                     renewed_from: str | None = None,
                     public_key: keys.PublicKey | None = None) -> LeafRequest:
        """Step 1 of issuance: check the name, profile, lifetime, SANs and CSR."""
        if not _NAME.match(name):
            raise ConfigError(f"name {name!r} must be 1-64 of letters, digits, '.', '_' or '-'")
        prof = self.profiles.leaf(profile)
        lifetime = days or prof.days
        if lifetime > prof.max_days:
            raise ConfigError(f"--days {lifetime} exceeds the {profile} profile's max_days "
                              f"({prof.max_days})")
        single = self.profiles.allow_single_label if allow_single_label is None else (
            allow_single_label)
        texts = list(sans)
        if csr is not None:
            request = load_csr(csr)
            public_key = builders.check_csr(request)
            # CSR SANs get the same checks as --san ones (a NUL in a URI, say).
            texts = texts or [format_san(g) for g in sans_of(request)]
        general = tuple(builders.parse_san(t, allow_single_label=single) for t in texts)
        if not general:
            raise ConfigError("a leaf needs at least one SAN (--san DNS:..., IP:... or URI:...)")
        return LeafRequest(name=name, profile=prof, sans=general, days=lifetime,
                           key_type=key_type or prof.key_type, public_key=public_key,
                           renewed_from=renewed_from)

    def issue_with(self, signer: Signer, request: LeafRequest, *,
                   out_dir: str | Path | None = None, encrypt_key: bool = False,
                   p12: bool = False, p12_legacy: bool = False) -> Issued:
        """Step 2 of issuance: sign ``request`` with ``signer`` and write the files."""
        return self.issue_batch(signer, [request], out_dir=out_dir, encrypt_key=encrypt_key,
                                p12=p12, p12_legacy=p12_legacy)[0]

    def issue_batch(self, signer: Signer, requests: Sequence[LeafRequest], *,
                    out_dir: str | Path | None = None, encrypt_key: bool = False,
                    p12: bool = False, p12_legacy: bool = False) -> list[Issued]:
        """Sign ``requests`` with ``signer``: one lock, one inventory transaction, one fsync
        of the output directory for the whole batch (bulk renewal, the kill switch).

        Order, under the lock, for ``kill -9`` at any point: the duplicate checks, the new
        key files, the inventory rows (one commit), the certificate files. A crash can leave
        keys without certificates (harmless: a rerun replaces them) but never a certificate
        the inventory does not know; and a renewal is recorded against its old serial, so a
        rerun never issues it twice. Each file is still written atomically and fsynced; the
        writes overlap in a few threads (``fsync`` releases the GIL).
        """
        names = [r.name for r in requests]
        if len(set(names)) != len(names):
            raise CAError("a batch names the same leaf twice")
        for request in requests:
            builders.check_name_constraints(request.sans, signer.cert)
        leaf_keys = {r.name: keys.generate_private_key(r.key_type)
                     for r in requests if r.public_key is None}
        if p12 and len(leaf_keys) < len(requests):
            raise ConfigError("--p12 needs the private key; with --csr the requester holds it")
        leaf_pass = self.passphrases.get("leaf", new=True) if encrypt_key and leaf_keys else None
        p12_pass = self.passphrases.get("p12", new=True) if p12 and leaf_keys else None
        out = make_dir(Path(out_dir) if out_dir else self.home.issued_dir, 0o755)
        with files.file_lock(self.home.lock), ThreadPoolExecutor(_WRITERS) as pool:
            for request in requests:
                self._check_unique(request)
            list(pool.map(lambda item: keys.write_private_key(
                out / f"{item[0]}.key", item[1], leaf_pass, kdf_rounds=self.kdf_rounds,
                overwrite=True, sync_dir=False), leaf_keys.items()))
            signed = [self._sign(signer, r, r.public_key or leaf_keys[r.name].public_key())
                      for r in requests]
            self.inventory.add_many([
                (record, "renew" if r.renewed_from else "issue",
                 {"profile": r.profile.name, "sans": list(record.sans)})
                for r, (_, record) in zip(requests, signed, strict=True)])
            writes: list[tuple[Path, bytes, int]] = []
            for r, (cert, _) in zip(requests, signed, strict=True):
                writes += [(out / f"{r.name}.pem", cert_pem(cert), 0o644),
                           (out / f"{r.name}.chain.pem", cert_pem(cert) + cert_pem(signer.cert),
                            0o644)]
                if p12_pass is not None and r.name in leaf_keys:
                    writes.append((out / f"{r.name}.p12", pkcs12_bytes(
                        r.name, leaf_keys[r.name], cert, [signer.cert], p12_pass,
                        legacy=p12_legacy), 0o600))
            list(pool.map(lambda w: files.atomic_write(w[0], w[1], mode=w[2], sync_dir=False),
                          writes))
            files.fsync_dir(out)
            if not self.home.intermediate_crl.exists():
                self.write_intermediate_crl(signer)
        issued = []
        for r, (cert, record) in zip(requests, signed, strict=True):
            audit.record("ca.renew" if r.renewed_from else "ca.issue", target=r.name,
                         serial=record.serial, profile=r.profile.name, sans=list(record.sans),
                         not_after=record.not_after, key_holder=record.key_holder,
                         renewed_from=r.renewed_from)
            issued.append(Issued(
                name=r.name, serial=record.serial, profile=r.profile.name,
                cert_path=out / f"{r.name}.pem", chain_path=out / f"{r.name}.chain.pem",
                key_path=out / f"{r.name}.key" if r.name in leaf_keys else None,
                p12_path=out / f"{r.name}.p12" if p12_pass and r.name in leaf_keys else None,
                not_after=cert.not_valid_after_utc, fingerprint=record.fingerprint,
                sans=record.sans, renewed_from=r.renewed_from))
        return issued

    def _check_unique(self, request: LeafRequest) -> None:
        inv = self.inventory
        if request.renewed_from is None and inv.by_name(request.name, kind="leaf"):
            raise CAError(f"{request.name!r} already has a valid certificate; use "
                          "`vaultkit ca renew` or revoke it first")
        if request.renewed_from is not None and inv.renewals_of(request.renewed_from):
            raise CAError(f"{request.name!r} ({request.renewed_from}) was already renewed",
                          reference=request.renewed_from)

    def _sign(self, signer: Signer, request: LeafRequest, public_key: keys.PublicKey
              ) -> tuple[x509.Certificate, CertRecord]:
        """Under the lock: a fresh serial, the signature, the inventory record."""
        serial = builders.random_serial()
        while self.inventory.get(serial_hex(serial)) is not None:  # 2^-159: belt and braces
            serial = builders.random_serial()
        cert = builders.issue_leaf(public_key, request.sans, ekus=request.profile.ekus,
                                   issuer=signer.cert, issuer_key=signer.key, days=request.days,
                                   crl_url=self.profiles.crl_url, serial=serial)
        record = self.record_of(cert, name=request.name, kind="leaf",
                                profile=request.profile.name,
                                key_holder="ca" if request.public_key is None else "requester",
                                renewed_from=request.renewed_from)
        return cert, record

    def issue(self, name: str, *, profile: str = "server", sans: list[str] | None = None,
              days: int | None = None, key_type: str | None = None, csr: bytes | None = None,
              out_dir: str | Path | None = None, encrypt_key: bool = False, p12: bool = False,
              p12_legacy: bool = False, allow_single_label: bool | None = None) -> Issued:
        """Issue a leaf and write ``NAME.pem``, ``NAME.key`` (0600) and ``NAME.chain.pem``."""
        request = self.leaf_request(name, profile=profile, sans=sans or (), days=days,
                                    key_type=key_type, csr=csr,
                                    allow_single_label=allow_single_label)
        return self.issue_with(self.signer(), request, out_dir=out_dir,
                               encrypt_key=encrypt_key, p12=p12, p12_legacy=p12_legacy)

    def renewal_request(self, old: CertRecord, *, days: int | None = None,
                        csr: bytes | None = None) -> LeafRequest:
        """The same profile and SANs as ``old``; a new key, or for a requester-held key the
        same public key again (as ``step ca renew`` does) unless a new ``csr`` is given."""
        public_key = None
        if old.key_holder == "requester" and csr is None:
            cert = x509.load_pem_x509_certificate(old.pem.encode())
            public_key = keys.check_public_key(cert.public_key())
        return self.leaf_request(old.name, profile=old.profile or "server", sans=old.sans,
                                 days=days, key_type=old.key_type, csr=csr,
                                 allow_single_label=True, renewed_from=old.serial,
                                 public_key=public_key)

    def renew(self, name: str, *, days: int | None = None, out_dir: str | Path | None = None,
              csr: bytes | None = None) -> Issued:
        """A new certificate for ``name``, same profile and SANs.

        The previous certificate stays valid until it expires, so services can roll
        over; revoke it with reason ``superseded`` once the new one is deployed.
        """
        current = self.inventory.by_name(name, kind="leaf")
        if not current:
            raise NotFoundError(f"no valid certificate named {name!r}", source="ca")
        request = self.renewal_request(current[0], days=days, csr=csr)
        return self.issue_with(self.signer(), request, out_dir=out_dir)

    def resolve(self, target: str) -> list[CertRecord]:
        """Valid leaves named ``target``, else the certificate with serial ``target``."""
        found = self.inventory.by_name(target, kind="leaf")
        if found:
            return found
        serial = parse_serial(target)
        record = self.inventory.get(serial_hex(serial)) if serial is not None else None
        if record is None:
            raise NotFoundError(f"no certificate named or numbered {target!r}", source="ca")
        return [record]

    def revoke(self, target: str, *, reason: str = "unspecified",
               regenerate_crl: bool = True) -> list[str]:
        """Revoke ``target`` (a name: every valid leaf of it; or a serial); rebuild the CRL."""
        crl.check_reason(reason)
        records = self.resolve(target)
        for r in records:
            if r.kind != "leaf":
                raise CAError(f"{target!r} is a {r.kind} certificate; use "
                              "`vaultkit ca intermediate revoke --root-key ...`")
            if r.status == "revoked":
                raise CAError(f"{target!r} is already revoked", reference=r.serial)
        return self.revoke_serials([r.serial for r in records], reason=reason,
                                   signer=self.signer() if regenerate_crl else None)

    def revoke_serials(self, serials: list[str], *, reason: str, signer: Signer | None
                       ) -> list[str]:
        """Mark ``serials`` revoked in one transaction; re-sign the CRL when given a signer."""
        with files.file_lock(self.home.lock):
            self.inventory.revoke(serials, reason=reason, when=builders.utcnow())
            if signer is not None:
                self.write_intermediate_crl(signer)
        for serial in serials:
            audit.record("ca.revoke", serial=serial, reason=reason)
        return serials

    def generate_crl(self, *, root_key: str | Path | None = None
                     ) -> dict[str, x509.CertificateRevocationList]:
        """Re-sign the intermediate CRL; with ``root_key``, the root CRL too."""
        out: dict[str, x509.CertificateRevocationList] = {}
        signer = self.signer() if self.home.intermediate_cert.exists() else None
        root = rkey = None
        if root_key is not None:
            root = self.root_cert()
            rkey = self.load_key(Path(root_key), "root", root)
        with files.file_lock(self.home.lock):
            if signer is not None:
                out["intermediate"] = self.write_intermediate_crl(signer)
            if root is not None and rkey is not None:
                out["root"] = self.write_crl(root, rkey, self.home.root_crl,
                                             self.profiles.root.crl_days)
        if not out:
            raise CAError("no intermediate yet; pass --root-key to re-sign the root CRL")
        return out

    def list(self, *, expiring_days: int | None = None) -> list[CertRecord]:
        window = dt.timedelta(days=expiring_days) if expiring_days is not None else None
        return self.inventory.all(expiring_within=window)

    def export_p12(self, name: str, *, directory: str | Path | None = None,
                   out: str | Path | None = None, legacy: bool = False) -> Path:
        """``NAME.p12`` from ``NAME.pem``/``NAME.key`` in ``directory`` (default HOME/issued)."""
        src = Path(directory) if directory else self.home.issued_dir
        cert = load_cert(src / f"{name}.pem", f"certificate {name}.pem")
        key_path = src / f"{name}.key"
        data = files.read_private(key_path)
        passphrase = self.passphrases.get("leaf") if b"ENCRYPTED" in data else None
        key = keys.load_private_key(key_path, passphrase)
        if not keys.same_public_key(key.public_key(), cert.public_key()):  # type: ignore[arg-type]
            raise CAKeyError("the key does not match the certificate", reference=str(key_path))
        chain = self._export_chain(name, cert)
        target = Path(out) if out else src / f"{name}.p12"
        files.write_private(target, pkcs12_bytes(name, key, cert, chain,
                                                 self.passphrases.get("p12", new=True),
                                                 legacy=legacy))
        audit.record("ca.export", target=name, format="pkcs12-legacy" if legacy else "pkcs12")
        return target

    def _export_chain(self, name: str, cert: x509.Certificate
                      ) -> builtins.list[x509.Certificate]:
        """The certificate's own issuer (not whichever intermediate is current), after
        checking the inventory does not list it as revoked (itself or through its issuer)."""
        record = self.inventory.get(serial_hex(cert.serial_number))
        if record is not None and record.status == "revoked":
            how = " through its issuer" if record.revoked_via_issuer else ""
            raise CAError(f"{name} ({record.serial}) is revoked{how}; export its renewed or "
                          "re-issued certificate instead (--dir)", reference=record.serial)
        issuer = self.inventory.by_ski(aki_hex(cert))
        if issuer is not None and issuer.kind == "intermediate":
            return [x509.load_pem_x509_certificate(issuer.pem.encode())]
        return [self.intermediate_cert()] if self.home.intermediate_cert.exists() else []

    def verify(self, cert_path: str | Path, *, purpose: str | None = None,
               check_crl: bool = True) -> dict[str, Any]:
        return verify_certificate(self.home, self.inventory, Path(cert_path), purpose=purpose,
                                  check_crl=check_crl)


__all__ = ["CertificateAuthority", "Issued", "LeafRequest", "Signer"]
