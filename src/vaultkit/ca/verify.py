"""``vaultkit ca verify``: the chain, the CRLs and the purpose of one certificate.

Two independent checks, both must pass:

1. explicit RFC 5280 checks done here: each signature (``verify_directly_issued_by``),
   validity at *now*, CA flags, the EKU the purpose needs, and the CRLs of both tiers
   (signature by the issuer, not past nextUpdate, serial not listed);
2. cryptography's path builder (``x509.verification``), which adds name constraints,
   pathlen and its own profile checks. It rejects Ed25519 chains ("forbidden public
   key algorithm", see research B2), so Ed25519 gets check 1 only, and the report says so.

The inventory has the last word on revocation: a certificate it lists as revoked (itself,
or through a revoked intermediate) is refused even when the CRL is not re-signed yet or
``check_crl`` is off.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import CertificateRejectedError
from . import builders
from .certs import aki_hex, fingerprint, load_cert, sans_of, ski_hex
from .home import CAHome
from .inventory import Inventory, serial_hex

_PURPOSE_EKU = {"server": ["serverAuth"], "client": ["clientAuth"],
                "both": ["serverAuth", "clientAuth"]}


def _reject(message: str, path: Path) -> CertificateRejectedError:
    return CertificateRejectedError(message, source="ca", reference=str(path))


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_crl(crl_path: Path, issuer: x509.Certificate, cert: x509.Certificate,
               now: dt.datetime, path: Path) -> None:
    try:
        the_crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    except FileNotFoundError:
        raise _reject(f"CRL {crl_path.name} is missing (run `vaultkit ca crl`)", path) from None
    except ValueError as exc:
        raise _reject(f"CRL {crl_path.name} is not a PEM CRL", path) from exc
    if not the_crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise _reject(f"CRL {crl_path.name} is not signed by {issuer.subject.rfc4514_string()}",
                      path)
    next_update = the_crl.next_update_utc
    if next_update is not None and next_update < now:
        raise _reject(f"CRL {crl_path.name} expired at {next_update:%Y-%m-%d %H:%M}Z "
                      "(run `vaultkit ca crl`)", path)
    entry = the_crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        what = "certificate" if not _is_ca(cert) else (
            f"its issuer {cert.subject.rfc4514_string()}")
        raise _reject(f"{what} {cert.serial_number:x} is revoked "
                      f"(since {entry.revocation_date_utc:%Y-%m-%d})", path)


def verify_certificate(home: CAHome, inventory: Inventory, path: Path, *,
                       purpose: str | None = None, check_crl: bool = True,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """Verify the first certificate in ``path`` against the CA home; return a report."""
    now = now or builders.utcnow()
    leaf = load_cert(path, "certificate")
    root = load_cert(home.root_cert, "root certificate")
    current = _current(home)
    aki = aki_hex(leaf)
    if aki == ski_hex(root):
        issuer = root
    elif current is not None and aki == ski_hex(current):
        issuer = current
    else:
        record = inventory.by_ski(aki)
        if record is None:
            raise _reject("not issued by this CA (unknown authority key identifier)", path)
        issuer = x509.load_pem_x509_certificate(record.pem.encode())
    chain = [leaf] if issuer is root else [leaf, issuer]
    for child, parent in zip(chain, [*chain[1:], root], strict=True):
        if not _issued_by(child, parent):
            raise _reject(f"signature of {child.subject.rfc4514_string()} does not verify "
                          "against its issuer", path)
    for cert in [*chain, root]:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise _reject(f"{cert.subject.rfc4514_string()} is not valid now (valid "
                          f"{cert.not_valid_before_utc:%Y-%m-%d} to "
                          f"{cert.not_valid_after_utc:%Y-%m-%d})", path)
    for ca_cert in chain[1:]:
        bc = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            raise _reject("the issuer is not a CA", path)
    try:
        eku_oids = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku_oids = []
    names_by_oid = {oid: name for name, oid in builders.EKU_OIDS.items()}
    eku_names = [names_by_oid.get(oid, oid.dotted_string) for oid in eku_oids]
    if purpose is not None:
        if purpose not in _PURPOSE_EKU:
            raise _reject(f"unknown purpose {purpose!r} (server, client or both)", path)
        missing = [e for e in _PURPOSE_EKU[purpose] if e not in eku_names]
        if missing:
            raise _reject(f"wrong purpose: the certificate lacks EKU {', '.join(missing)}", path)
    crl_checked = []
    if check_crl:
        # The root CRL lists revoked intermediates (or the leaf itself if the root issued it):
        # checked first, so a leaf of a revoked intermediate is reported as such.
        _check_crl(home.root_crl, root, chain[-1], now, path)
        if issuer is not root:
            crl_path = (home.intermediate_crl if issuer is current
                        else home.retired_dir / f"{issuer.serial_number:040x}" / "intermediate.crl")
            _check_crl(crl_path, issuer, leaf, now, path)
            crl_checked.append("intermediate")
        crl_checked.append("root")
    _check_inventory(inventory, leaf, path)
    path_checked = _policy_check(leaf, chain[1:], root, purpose, path, now)
    return {
        "subject": leaf.subject.rfc4514_string(),
        "serial": f"{leaf.serial_number:040x}",
        "issuer": issuer.subject.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "ekus": eku_names,
        "purpose": purpose,
        "crls_checked": crl_checked,
        "path_builder": path_checked,
        "ok": True,
    }


def _check_inventory(inventory: Inventory, leaf: x509.Certificate, path: Path) -> None:
    """The CA's own record decides too: a leaf revoked with ``revoke --no-crl`` (CRL not yet
    re-signed), or whose intermediate is revoked, is refused even with ``--no-crl``."""
    record = inventory.get(serial_hex(leaf.serial_number))
    if record is None or record.fingerprint != fingerprint(leaf) or record.status != "revoked":
        return
    if record.revoked_via_issuer:
        raise _reject(f"certificate {leaf.serial_number:x} is revoked through its issuer, a "
                      "revoked intermediate (inventory)", path)
    raise _reject(f"certificate {leaf.serial_number:x} is revoked in the inventory "
                  f"({record.reason}); peers see it once the CRL is re-signed "
                  "(vaultkit ca crl)", path)


def _current(home: CAHome) -> x509.Certificate | None:
    if not home.intermediate_cert.exists():
        return None
    return load_cert(home.intermediate_cert, "intermediate certificate")


def _policy_check(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                  root: x509.Certificate, purpose: str | None, path: Path,
                  now: dt.datetime) -> str:
    from cryptography.x509 import verification as v

    if any(isinstance(c.public_key(), ed25519.Ed25519PublicKey)
           for c in [leaf, *intermediates, root]):
        return "skipped (Ed25519 is not supported by cryptography's verifier)"
    if not intermediates:
        return "skipped (a CA certificate)"
    builder = v.PolicyBuilder().store(v.Store([root])).time(now)
    try:
        if purpose in ("client", "both"):
            builder.build_client_verifier().verify(leaf, intermediates)
        if purpose in ("server", "both"):
            names = [s for s in sans_of(leaf) if isinstance(s, (x509.DNSName, x509.IPAddress))]
            if not names:
                raise _reject("a server certificate needs a DNS or IP SAN", path)
            builder.build_server_verifier(names[0]).verify(leaf, intermediates)
    except v.VerificationError as exc:
        raise _reject(f"path validation failed: {exc}", path) from exc
    return "ok" if purpose else "skipped (no purpose given)"


__all__ = ["verify_certificate"]
