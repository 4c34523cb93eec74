"""The offline root's ceremony: create the root, sign, revoke and retire intermediates.

These need the root key (on offline media) and are the only operations that read it;
see ``ca/README.md`` for the runbook.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import audit, files
from ..errors import CAError, ConfigError, NotFoundError
from . import builders, crl, keys
from .base import CABase
from .certs import cert_pem, common_name, fingerprint, iso
from .home import GITIGNORE, make_dir
from .inventory import serial_hex
from .profiles import DEFAULT_PROFILES_TOML


class RootCeremony(CABase):
    """``init``, ``intermediate create|sign|revoke``: the steps around the offline root."""

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
        make_dir(key_out.parent, 0o700)
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
        self.inventory.add(self.record_of(cert, name=name, kind="root", profile=None),
                           action="init")
        self.write_root_crl(cert, key)
        audit.record("ca.init", target=name, serial=serial_hex(cert.serial_number),
                     fingerprint=fingerprint(cert), key_type=keys.describe_key(key))
        return cert

    def new_intermediate_key(self, name: str, constraints: x509.NameConstraints | None,
                             key_type: str | None) -> tuple[keys.PrivateKey,
                                                            x509.CertificateSigningRequest]:
        """A new intermediate key, written encrypted to ``HOME/private``, and its CSR."""
        key = keys.generate_private_key(key_type or self.profiles.intermediate.key_type)
        csr = builders.build_csr(key, name, constraints=constraints)
        self.home.ensure()
        # A pending (unsigned) key may be replaced: it never signed anything.
        keys.write_private_key(self.home.intermediate_key, key,
                               self.passphrases.get("intermediate", new=True),
                               kdf_rounds=self.kdf_rounds, overwrite=True)
        return key, csr

    def create_intermediate(self, name: str, *, permit_dns: list[str] | None = None,
                            permit_ip: list[str] | None = None, key_type: str | None = None
                            ) -> x509.CertificateSigningRequest:
        """New intermediate key (encrypted, 0600) and ``HOME/intermediate.csr``."""
        home = self.home
        self.root_cert()  # the home must have a root
        if home.intermediate_cert.exists():
            raise CAError("an intermediate is active; revoke it first "
                          "(vaultkit ca intermediate revoke --root-key ...), or replace it "
                          "(vaultkit ca intermediate replace --root-key ...)",
                          reference=str(home.intermediate_cert))
        prof = self.profiles.intermediate
        dns, ips = list(permit_dns or prof.permit_dns), list(permit_ip or prof.permit_ip)
        key, csr = self.new_intermediate_key(name, builders.name_constraints(dns, ips), key_type)
        files.atomic_write(home.intermediate_csr, csr.public_bytes(serialization.Encoding.PEM))
        audit.record("ca.intermediate.create", target=name, key_type=keys.describe_key(key),
                     permit_dns=dns, permit_ip=ips)
        return csr

    def sign_intermediate_csr(self, csr: x509.CertificateSigningRequest, root: x509.Certificate,
                              root_key: keys.PrivateKey, *, days: int | None = None,
                              renewed_from: str | None = None) -> x509.Certificate:
        """Sign, record and install ``HOME/intermediate.pem`` (pathlen 0, CSR's constraints)."""
        prof = self.profiles.intermediate
        cert = builders.sign_intermediate(
            csr, root=root, root_key=root_key, days=days or prof.days,
            path_length=prof.path_length, constraints=builders.requested_constraints(csr),
            crl_url=self.profiles.root_crl_url)
        self.inventory.add(self.record_of(cert, name=common_name(cert), kind="intermediate",
                                          profile=None, renewed_from=renewed_from),
                           action="intermediate.sign")
        files.atomic_write(self.home.intermediate_cert, cert_pem(cert))
        audit.record("ca.intermediate.sign", target=common_name(cert),
                     serial=serial_hex(cert.serial_number), fingerprint=fingerprint(cert),
                     not_after=iso(cert.not_valid_after_utc), renewed_from=renewed_from)
        return cert

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
        key = self.load_key(Path(root_key), "root", root)
        cert = self.sign_intermediate_csr(csr, root, key, days=days)
        home.intermediate_csr.unlink()
        self.write_root_crl(root, key)
        return cert

    def retire_intermediate(self, inter: x509.Certificate, root: x509.Certificate,
                            root_key: keys.PrivateKey, *, reason: str) -> str:
        """Revoke ``inter`` in the root CRL and move its files to ``HOME/retired/SERIAL``."""
        home = self.home
        serial = serial_hex(inter.serial_number)
        with files.file_lock(home.lock):
            self.inventory.revoke([serial], reason=reason, when=builders.utcnow())
            self.write_root_crl(root, root_key)
            retired = make_dir(home.retired_dir / serial, 0o700)
            home.retired_dir.chmod(0o700)
            for path in (home.intermediate_cert, home.intermediate_key, home.intermediate_crl,
                         home.intermediate_crl.with_suffix(".crl.der")):
                if path.exists():
                    shutil.move(str(path), retired / path.name)
        audit.record("ca.intermediate.revoke", target=common_name(inter), serial=serial,
                     reason=reason)
        return serial

    def revoke_intermediate(self, root_key: str | Path, *, reason: str = "keyCompromise"
                            ) -> str:
        """Revoke the intermediate in the root CRL and retire its files (see also
        :func:`vaultkit.ca.rotation.replace_intermediate`, which also replaces it)."""
        crl.check_reason(reason)
        inter = self.intermediate_cert()
        root = self.root_cert()
        return self.retire_intermediate(inter, root, self.load_key(Path(root_key), "root", root),
                                        reason=reason)


__all__ = ["RootCeremony"]
