"""The CA's operations: the offline root ceremony, day-to-day issuance, revocation and CRLs.

Every ``vaultkit ca`` command is one method here:

>>> from vaultkit.ca import CertificateAuthority, CAHome, StaticPassphrases
>>> ca = CertificateAuthority(CAHome(tmp), passphrases=StaticPassphrases({
...     "root": "root passphrase 1", "intermediate": "inter passphrase 1"}))  # doctest: +SKIP
>>> ca.init_root("Example Root", root_key_out="/media/usb/root.key")  # doctest: +SKIP
>>> ca.create_intermediate("Example Issuing CA", permit_dns=["svc.internal"])  # doctest: +SKIP
>>> ca.sign_intermediate("/media/usb/root.key")  # offline step  # doctest: +SKIP
>>> ca.issue("api", profile="server", sans=["DNS:api.svc.internal", "IP:10.0.0.5"])  # doctest: +SKIP

Issuance loads only the intermediate key; the root key is read only by
``init_root``, ``sign_intermediate``, ``revoke_intermediate`` and
``generate_crl(root_key=...)``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .. import audit, files
from ..errors import CAError, CAKeyError, ConfigError, NotFoundError
from ..secret import Secret
from . import builders, crl, keys
from .home import GITIGNORE, CAHome
from .inventory import CertRecord, Inventory, parse_serial, serial_hex
from .passphrase import EnvKeyringPrompt, Passphrases
from .profiles import DEFAULT_PROFILES_TOML, Profiles
from .unlock import PendingKey

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as OpenSSL prints it (``AB:CD:...``)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def ski_hex(cert: x509.Certificate) -> str:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def aki_hex(cert: x509.Certificate) -> str:
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    return (aki.key_identifier or b"").hex()


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(path: Path, what: str) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"{what} not found", source="ca", reference=str(path)) from exc
    except OSError as exc:
        raise CAError(f"cannot read {what}: {exc.strerror}", reference=str(path)) from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CAError(f"{what} is not a PEM certificate", reference=str(path)) from exc


def sans_of(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _cn(cert: x509.Certificate | x509.CertificateSigningRequest) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CertificateAuthority:
    """An offline root and an online intermediate in a :class:`CAHome`."""

    def __init__(
        self,
        home: CAHome,
        *,
        passphrases: Passphrases | None = None,
        kdf_rounds: int = keys.DEFAULT_KDF_ROUNDS,
        profiles: Profiles | None = None,
        pending_keys: Iterable[PendingKey] = (),
    ) -> None:
        self.home = home
        self.passphrases = passphrases or EnvKeyringPrompt()
        self.kdf_rounds = kdf_rounds
        self._profiles = profiles
        self._inventory: Inventory | None = None
        # Keys whose KDF the CLI started before importing the rest (see .unlock).
        self._pending = {p.path.absolute(): p for p in pending_keys}

    def __repr__(self) -> str:
        return f"CertificateAuthority(home={str(self.home.root_dir)!r})"

    # --- plumbing -----------------------------------------------------------------------

    @property
    def profiles(self) -> Profiles:
        if self._profiles is None:
            self._profiles = Profiles.load(self.home.profiles)
        return self._profiles

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            if not self.home.root_dir.is_dir():
                raise ConfigError("the CA home does not exist; run `vaultkit ca init` first",
                                  reference=str(self.home.root_dir))
            self._inventory = Inventory(self.home.inventory)
        return self._inventory

    def close(self) -> None:
        if self._inventory is not None:
            self._inventory.close()
            self._inventory = None

    def _record(self, cert: x509.Certificate, *, name: str, kind: str, profile: str | None,
                key_holder: str = "ca", renewed_from: str | None = None) -> CertRecord:
        return CertRecord(
            serial=serial_hex(cert.serial_number), name=name, kind=kind, profile=profile,
            issuer_ski=aki_hex(cert), ski=ski_hex(cert), subject=cert.subject.rfc4514_string(),
            sans=tuple(builders.format_san(s) for s in sans_of(cert)),
            key_type=keys.describe_key(cert.public_key()),  # type: ignore[arg-type]
            key_holder=key_holder, not_before=_iso(cert.not_valid_before_utc),
            not_after=_iso(cert.not_valid_after_utc), fingerprint=fingerprint(cert),
            status="valid", revoked_at=None, reason=None, renewed_from=renewed_from,
            issued_at=_iso(builders.utcnow()), pem=cert_pem(cert).decode())

    def _load_key(self, path: Path, role: str, cert: x509.Certificate | None) -> keys.PrivateKey:
        files.check_private_file(path)  # missing or readable by others: say so before prompting
        pending = self._pending.pop(path.absolute(), None)
        if pending is not None:  # already unlocking in the background: collect it
            key = pending.key()
        else:
            key = keys.load_private_key(path, self.passphrases.get(role))
        # A key that decrypts but is not the certificate's: a swapped or tampered file.
        if cert is not None and not keys.same_public_key(
                key.public_key(), cert.public_key()):  # type: ignore[arg-type]
            raise CAKeyError(f"the {role} key does not match its certificate",
                             reference=str(path))
        return key

    def root_cert(self) -> x509.Certificate:
        return load_cert(self.home.root_cert, "root certificate (HOME/root.pem)")

    def intermediate_cert(self) -> x509.Certificate:
        return load_cert(self.home.intermediate_cert,
                         "intermediate certificate (HOME/intermediate.pem); "
                         "run `vaultkit ca intermediate create` and `sign`")

    def _write_crl(self, issuer: x509.Certificate, key: keys.PrivateKey, target: Path,
                   days: int) -> x509.CertificateRevocationList:
        now = builders.utcnow()
        entries = self.inventory.revoked_entries(ski_hex(issuer), now=now)
        number = self.inventory.next_crl_number(ski_hex(issuer), details={
            "issuer": _cn(issuer), "entries": len(entries)})
        result = crl.build_crl(issuer, key, entries, number=number, days=days, now=now)
        der = crl.crl_der(result)
        files.atomic_write(target, crl.crl_pem(result, der))
        files.atomic_write(target.with_suffix(".crl.der"), der)
        audit.record("ca.crl", target=str(target), number=number, entries=len(entries))
        return result

    # --- the root (offline) -------------------------------------------------------------

    def init_root(self, name: str, *, root_key_out: str | Path, key_type: str | None = None,
                  days: int | None = None) -> x509.Certificate:
        """Create the root: its encrypted key at ``root_key_out``, ``HOME/root.pem``, the root CRL."""
        home = self.home
        if home.root_cert.exists():
            raise CAError("this CA home already has a root", reference=str(home.root_cert))
        key_out = Path(root_key_out)
        if key_out.exists():
            raise ConfigError("refusing to overwrite an existing key", reference=str(key_out))
        home.ensure()
        if not home.profiles.exists():
            files.atomic_write(home.profiles, DEFAULT_PROFILES_TOML.encode())
        if not (home.root_dir / ".gitignore").exists():
            files.atomic_write(home.root_dir / ".gitignore", GITIGNORE.encode())
        prof = self.profiles.root
        key = keys.generate_private_key(key_type or prof.key_type)
        cert = builders.build_root(key, name, days=days or prof.days, path_length=prof.path_length)
        keys.write_private_key(key_out, key, self.passphrases.get("root", new=True),
                               kdf_rounds=self.kdf_rounds)
        files.atomic_write(home.root_cert, cert_pem(cert))
        self.inventory.add(self._record(cert, name=name, kind="root", profile=None),
                           action="init")
        self._write_crl(cert, key, home.root_crl, prof.crl_days)
        audit.record("ca.init", target=name, serial=serial_hex(cert.serial_number),
                     fingerprint=fingerprint(cert), key_type=keys.describe_key(key))
        return cert

    def create_intermediate(self, name: str, *, permit_dns: list[str] | None = None,
                            permit_ip: list[str] | None = None, key_type: str | None = None
                            ) -> x509.CertificateSigningRequest:
        """New intermediate key (encrypted, 0600) and ``HOME/intermediate.csr``."""
        home = self.home
        self.root_cert()  # the home must have a root
        if home.intermediate_cert.exists():
            raise CAError("an intermediate is active; revoke it first "
                          "(vaultkit ca intermediate revoke --root-key ...)",
                          reference=str(home.intermediate_cert))
        prof = self.profiles.intermediate
        constraints = builders.name_constraints(
            permit_dns if permit_dns else prof.permit_dns,
            permit_ip if permit_ip else prof.permit_ip)
        key = keys.generate_private_key(key_type or prof.key_type)
        csr = builders.build_csr(key, name, constraints=constraints)
        home.ensure()
        # A pending (unsigned) key may be replaced: it never signed anything.
        keys.write_private_key(home.intermediate_key, key,
                               self.passphrases.get("intermediate", new=True),
                               kdf_rounds=self.kdf_rounds, overwrite=True)
        files.atomic_write(home.intermediate_csr, csr.public_bytes(serialization.Encoding.PEM))
        audit.record("ca.intermediate.create", target=name, key_type=keys.describe_key(key),
                     permit_dns=list(permit_dns or prof.permit_dns),
                     permit_ip=list(permit_ip or prof.permit_ip))
        return csr

    def sign_intermediate(self, root_key: str | Path, *, days: int | None = None
                          ) -> x509.Certificate:
        """The offline step: sign ``HOME/intermediate.csr`` with the root (pathlen 0)."""
        home = self.home
        try:
            csr = x509.load_pem_x509_csr(home.intermediate_csr.read_bytes())
        except FileNotFoundError as exc:
            raise NotFoundError("no intermediate CSR; run `vaultkit ca intermediate create`",
                                source="ca", reference=str(home.intermediate_csr)) from exc
        except ValueError as exc:
            raise CAError("HOME/intermediate.csr is not a PEM CSR",
                          reference=str(home.intermediate_csr)) from exc
        root = self.root_cert()
        key = self._load_key(Path(root_key), "root", root)
        prof = self.profiles.intermediate
        cert = builders.sign_intermediate(
            csr, root=root, root_key=key, days=days or prof.days, path_length=prof.path_length,
            constraints=builders.requested_constraints(csr), crl_url=self.profiles.root_crl_url)
        self.inventory.add(self._record(cert, name=_cn(cert), kind="intermediate",
                                        profile=None), action="intermediate.sign")
        files.atomic_write(home.intermediate_cert, cert_pem(cert))
        home.intermediate_csr.unlink()
        self._write_crl(root, key, home.root_crl, self.profiles.root.crl_days)
        audit.record("ca.intermediate.sign", target=_cn(cert),
                     serial=serial_hex(cert.serial_number), fingerprint=fingerprint(cert),
                     not_after=_iso(cert.not_valid_after_utc))
        return cert

    def revoke_intermediate(self, root_key: str | Path, *, reason: str = "keyCompromise"
                            ) -> str:
        """The kill switch: revoke the intermediate in the root CRL and retire its files."""
        crl.check_reason(reason)
        home = self.home
        inter = self.intermediate_cert()
        root = self.root_cert()
        key = self._load_key(Path(root_key), "root", root)
        serial = serial_hex(inter.serial_number)
        import shutil

        with files.file_lock(home.lock):
            self.inventory.revoke([serial], reason=reason, when=builders.utcnow())
            self._write_crl(root, key, home.root_crl, self.profiles.root.crl_days)
            retired = home.retired_dir / serial
            retired.mkdir(parents=True, exist_ok=True, mode=0o700)
            for path in (home.intermediate_cert, home.intermediate_key, home.intermediate_crl,
                         home.intermediate_crl.with_suffix(".crl.der")):
                if path.exists():
                    shutil.move(str(path), retired / path.name)
        audit.record("ca.intermediate.revoke", target=_cn(inter), serial=serial, reason=reason)
        return serial

    # --- day-to-day (intermediate) ------------------------------------------------------

    def issue(
        self,
        name: str,
        *,
        profile: str = "server",
        sans: list[str] | None = None,
        days: int | None = None,
        key_type: str | None = None,
        csr: bytes | None = None,
        out_dir: str | Path | None = None,
        encrypt_key: bool = False,
        p12: bool = False,
        p12_legacy: bool = False,
        allow_single_label: bool | None = None,
        renewed_from: str | None = None,
    ) -> Issued:
        """Issue a leaf and write ``NAME.pem``, ``NAME.key`` (0600) and ``NAME.chain.pem``."""
        if not _NAME.match(name):
            raise ConfigError(f"name {name!r} must be 1-64 of letters, digits, '.', '_' or '-'")
        prof = self.profiles.leaf(profile)
        lifetime = days or prof.days
        if lifetime > prof.max_days:
            raise ConfigError(f"--days {lifetime} exceeds the {profile} profile's max_days "
                              f"({prof.max_days})")
        single = self.profiles.allow_single_label if allow_single_label is None else (
            allow_single_label)
        general = [builders.parse_san(s, allow_single_label=single) for s in sans or []]
        request = None
        if csr is not None:
            try:
                request = x509.load_pem_x509_csr(csr)
            except ValueError:
                try:
                    request = x509.load_der_x509_csr(csr)
                except ValueError as exc:
                    raise CAError("the CSR is neither PEM nor DER") from exc
            public_key = builders.check_csr(request)
            if not general:
                general = [builders.parse_san(builders.format_san(g), allow_single_label=single)
                           for g in _csr_sans(request)]
        inter = self.intermediate_cert()
        if inter.not_valid_after_utc <= builders.utcnow():
            raise CAError("the intermediate has expired; create and sign a new one")
        builders.check_name_constraints(general, inter)
        # Everything that does not need the CA key comes first: when the CLI started the
        # key's KDF in the background (see .unlock), this work overlaps it.
        self.inventory  # noqa: B018 - opens (and if needed creates) the database
        leaf_key: keys.PrivateKey | None = None
        if request is None:
            leaf_key = keys.generate_private_key(key_type or prof.key_type)
            public_key = leaf_key.public_key()
        inter_key = self._load_key(self.home.intermediate_key, "intermediate", inter)
        leaf_pass = self.passphrases.get("leaf", new=True) if (encrypt_key and leaf_key) else None
        p12_pass = self.passphrases.get("p12", new=True) if (p12 and leaf_key) else None
        if p12 and leaf_key is None:
            raise ConfigError("--p12 needs the private key; with --csr the requester holds it")
        out = Path(out_dir) if out_dir else self.home.issued_dir

        with files.file_lock(self.home.lock):
            # Under the lock: name/serial checks, the inventory row, then the files. The
            # row goes first, so a kill -9 can leave a row without files (harmless: the key
            # was never written) but never a certificate the inventory does not know.
            if renewed_from is None and self.inventory.by_name(name, kind="leaf"):
                raise CAError(f"{name!r} already has a valid certificate; use "
                              "`vaultkit ca renew` or revoke it first")
            serial = builders.random_serial()
            while self.inventory.get(serial_hex(serial)) is not None:  # 2^-159: belt and braces
                serial = builders.random_serial()
            cert = builders.issue_leaf(public_key, name, general, ekus=prof.ekus, issuer=inter,
                                       issuer_key=inter_key, days=lifetime,
                                       crl_url=self.profiles.crl_url, serial=serial)
            record = self._record(cert, name=name, kind="leaf", profile=profile,
                                  key_holder="ca" if leaf_key else "requester",
                                  renewed_from=renewed_from)
            self.inventory.add(record, action="renew" if renewed_from else "issue",
                               details={"profile": profile, "sans": list(record.sans)})
            out.mkdir(parents=True, exist_ok=True)
            key_path = p12_path = None
            if leaf_key is not None:
                key_path = keys.write_private_key(out / f"{name}.key", leaf_key, leaf_pass,
                                                  kdf_rounds=self.kdf_rounds, overwrite=True)
            cert_path = files.atomic_write(out / f"{name}.pem", cert_pem(cert))
            chain_path = files.atomic_write(out / f"{name}.chain.pem",
                                            cert_pem(cert) + cert_pem(inter))
            if leaf_key is not None and p12_pass is not None:
                p12_path = files.write_private(
                    out / f"{name}.p12", pkcs12_bytes(name, leaf_key, cert, [inter], p12_pass,
                                                      legacy=p12_legacy))
            if not self.home.intermediate_crl.exists():
                self._write_crl(inter, inter_key, self.home.intermediate_crl,
                                self.profiles.intermediate.crl_days)
        audit.record("ca.renew" if renewed_from else "ca.issue", target=name,
                     serial=record.serial, profile=profile, sans=list(record.sans),
                     not_after=record.not_after, key_holder=record.key_holder,
                     renewed_from=renewed_from)
        return Issued(name=name, serial=record.serial, profile=profile, cert_path=cert_path,
                      chain_path=chain_path, key_path=key_path, p12_path=p12_path,
                      not_after=cert.not_valid_after_utc, fingerprint=record.fingerprint,
                      sans=record.sans)

    def renew(self, name: str, *, days: int | None = None, out_dir: str | Path | None = None,
              csr: bytes | None = None) -> Issued:
        """A new certificate and key for ``name``, same profile and SANs.

        The previous certificate stays valid until it expires, so services can roll
        over; revoke it with reason ``superseded`` once the new one is deployed.
        """
        current = self.inventory.by_name(name, kind="leaf")
        if not current:
            raise NotFoundError(f"no valid certificate named {name!r}", source="ca")
        old = current[0]
        if old.key_holder == "requester" and csr is None:
            raise CAError(f"{name!r} was issued from a CSR; renew it with a new --csr")
        return self.issue(name, profile=old.profile or "server", sans=list(old.sans), days=days,
                          key_type=None if csr else old.key_type, csr=csr, out_dir=out_dir,
                          allow_single_label=True, renewed_from=old.serial)

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
        inter_key = inter = None
        if regenerate_crl:  # decrypt before taking the lock: the KDF is the slow part
            inter = self.intermediate_cert()
            inter_key = self._load_key(self.home.intermediate_key, "intermediate", inter)
        serials = [r.serial for r in records]
        with files.file_lock(self.home.lock):
            self.inventory.revoke(serials, reason=reason, when=builders.utcnow())
            if inter is not None and inter_key is not None:
                self._write_crl(inter, inter_key, self.home.intermediate_crl,
                                self.profiles.intermediate.crl_days)
        for serial in serials:
            audit.record("ca.revoke", target=records[0].name, serial=serial, reason=reason)
        return serials

    def generate_crl(self, *, root_key: str | Path | None = None
                     ) -> dict[str, x509.CertificateRevocationList]:
        """Re-sign the intermediate CRL; with ``root_key``, the root CRL too."""
        out: dict[str, x509.CertificateRevocationList] = {}
        with files.file_lock(self.home.lock):
            if self.home.intermediate_cert.exists():
                inter = self.intermediate_cert()
                key = self._load_key(self.home.intermediate_key, "intermediate", inter)
                out["intermediate"] = self._write_crl(inter, key, self.home.intermediate_crl,
                                                      self.profiles.intermediate.crl_days)
            if root_key is not None:
                root = self.root_cert()
                rkey = self._load_key(Path(root_key), "root", root)
                out["root"] = self._write_crl(root, rkey, self.home.root_crl,
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
        chain = []
        inter_path = self.home.intermediate_cert
        if inter_path.exists():
            chain.append(self.intermediate_cert())
        target = Path(out) if out else src / f"{name}.p12"
        files.write_private(target, pkcs12_bytes(name, key, cert, chain,
                                                 self.passphrases.get("p12", new=True),
                                                 legacy=legacy))
        audit.record("ca.export", target=name, format="pkcs12-legacy" if legacy else "pkcs12")
        return target

    def verify(self, cert_path: str | Path, *, purpose: str | None = None,
               check_crl: bool = True) -> dict[str, Any]:
        from .verify import verify_certificate

        return verify_certificate(self, Path(cert_path), purpose=purpose, check_crl=check_crl)


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        return list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def pkcs12_bytes(name: str, key: keys.PrivateKey, cert: x509.Certificate,
                 chain: list[x509.Certificate], passphrase: Secret[bytes], *,
                 legacy: bool = False) -> bytes:
    """PKCS#12 with the leaf, its key and the intermediate.

    Default: PBES2/PBKDF2-SHA256/AES-256-CBC at 600,000 rounds with a SHA-256 MAC,
    which OpenSSL 3, curl and Windows read. ``legacy``: 3DES + SHA-1 MAC at 2,048
    rounds, the only format macOS Keychain and iOS import (easy-rsa#957); use it only
    to carry a certificate to such a device, with a strong passphrase.
    """
    from cryptography.hazmat.primitives.serialization import pkcs12

    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        enc = (builder.kdf_rounds(2048)
               .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
               .hmac_hash(hashes.SHA1()).build(passphrase.reveal()))  # noqa: S303 - macOS needs it
    else:
        enc = (builder.kdf_rounds(keys.DEFAULT_KDF_ROUNDS)
               .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
               .hmac_hash(hashes.SHA256()).build(passphrase.reveal()))
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain or None, enc)


def summarize(records: list[CertRecord]) -> list[dict[str, Any]]:
    return [r.summary() for r in records]


def dumps(records: list[CertRecord]) -> str:
    return json.dumps(summarize(records), indent=2, sort_keys=True)


__all__ = ["CertificateAuthority", "Issued", "cert_pem", "fingerprint", "load_cert",
           "pkcs12_bytes", "ski_hex"]
