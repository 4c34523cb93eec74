"""Reading certificates: loading, fingerprints, key identifiers, SANs, names and times.

Shared by issuance (:mod:`.authority`), verification (:mod:`.verify`) and rotation
(:mod:`.rotation`), so none of them imports another for these.

>>> from vaultkit.ca.certs import format_san
>>> format_san(x509.DNSName("api.svc.internal"))
'DNS:api.svc.internal'
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..errors import CAError, NotFoundError


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
    """The first PEM certificate in ``path``; a clear error when it is missing or not PEM."""
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


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A CSR in PEM or DER."""
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError:
        try:
            return x509.load_der_x509_csr(data)
        except ValueError as exc:
            raise CAError("the CSR is neither PEM nor DER") from exc


def sans_of(item: x509.Certificate | x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    """The subjectAltName entries of a certificate or a CSR (empty when it has none)."""
    try:
        return list(item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def format_san(name: x509.GeneralName) -> str:
    """``DNS:x``, ``IP:y`` or ``URI:z``: the form ``--san`` takes and the inventory stores."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    return str(name)


def common_name(item: x509.Certificate | x509.CertificateSigningRequest) -> str:
    """The subject's CN, else its RFC 4514 string."""
    attrs = item.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else item.subject.rfc4514_string()


def iso(t: dt.datetime) -> str:
    """``2026-01-02T03:04:05Z``: how the inventory stores times."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["aki_hex", "cert_pem", "common_name", "fingerprint", "format_san", "iso", "load_cert",
           "load_csr", "sans_of", "ski_hex"]
