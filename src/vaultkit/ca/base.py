"""The CA's plumbing: the home, profiles, inventory, key unlocking and CRL writing.

:class:`CABase` is what the root ceremony (:mod:`.ceremony`) and day-to-day issuance
(:mod:`.authority`) share; use :class:`~vaultkit.ca.authority.CertificateAuthority`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from .. import audit, files
from ..errors import CAKeyError, ConfigError
from . import builders, crl, keys
from .certs import (
    aki_hex,
    cert_pem,
    common_name,
    fingerprint,
    format_san,
    iso,
    load_cert,
    sans_of,
    ski_hex,
)
from .home import CAHome, make_dir
from .inventory import CertRecord, Inventory, serial_hex
from .passphrase import EnvKeyringPrompt, Passphrases
from .pbes2 import PendingKey
from .profiles import Profiles


class Signer(NamedTuple):
    """The active intermediate and its unlocked key."""

    cert: x509.Certificate
    key: keys.PrivateKey


class CABase:
    """The home, its profiles and inventory, and how keys are unlocked and CRLs written."""

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
        # Keys whose KDF the CLI started while it loaded the rest (see .pbes2).
        self._pending = {p.path.absolute(): p for p in pending_keys}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(home={str(self.home.root_dir)!r})"

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
            self.home.check()
            self._inventory = Inventory(self.home.inventory)
        return self._inventory

    def close(self) -> None:
        if self._inventory is not None:
            self._inventory.close()
            self._inventory = None

    def record_of(self, cert: x509.Certificate, *, name: str, kind: str, profile: str | None,
                  key_holder: str = "ca", renewed_from: str | None = None) -> CertRecord:
        return CertRecord(
            serial=serial_hex(cert.serial_number), name=name, kind=kind, profile=profile,
            issuer_ski=aki_hex(cert), ski=ski_hex(cert), subject=cert.subject.rfc4514_string(),
            sans=tuple(format_san(s) for s in sans_of(cert)),
            key_type=keys.describe_key(cert.public_key()),  # type: ignore[arg-type]
            key_holder=key_holder, not_before=iso(cert.not_valid_before_utc),
            not_after=iso(cert.not_valid_after_utc), fingerprint=fingerprint(cert),
            status="valid", revoked_at=None, reason=None, renewed_from=renewed_from,
            issued_at=iso(builders.utcnow()), pem=cert_pem(cert).decode())

    def load_key(self, path: Path, role: str, cert: x509.Certificate | None) -> keys.PrivateKey:
        """Decrypt a CA key (once per call: callers keep it for a whole batch)."""
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

    def write_crl(self, issuer: x509.Certificate, key: keys.PrivateKey, target: Path,
                  days: int) -> x509.CertificateRevocationList:
        now = builders.utcnow()
        entries = self.inventory.revoked_entries(ski_hex(issuer), now=now)
        number = self.inventory.next_crl_number(ski_hex(issuer), details={
            "issuer": common_name(issuer), "entries": len(entries)})
        result = crl.build_crl(issuer, key, entries, number=number, days=days, now=now)
        der = crl.crl_der(result)
        make_dir(target.parent, 0o755)
        files.atomic_write(target, crl.crl_pem(result, der))
        files.atomic_write(target.with_suffix(".crl.der"), der)
        audit.record("ca.crl", target=str(target), number=number, entries=len(entries))
        return result

    def write_root_crl(self, root: x509.Certificate, key: keys.PrivateKey) -> None:
        self.write_crl(root, key, self.home.root_crl, self.profiles.root.crl_days)

    def write_intermediate_crl(self, signer: Signer) -> x509.CertificateRevocationList:
        return self.write_crl(signer.cert, signer.key, self.home.intermediate_crl,
                              self.profiles.intermediate.crl_days)


__all__ = ["CABase", "Signer"]
