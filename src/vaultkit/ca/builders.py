"""Certificate building that reads like RFC 5280.

Every certificate gets (section numbers are RFC 5280):

* a 159-bit random serial, positive and non-zero (4.1.2.2; CA/B BR 7.1 asks for 64+ bits
  of CSPRNG output so a chosen-prefix collision cannot be pre-computed);
* SubjectKeyIdentifier (4.2.1.2, method 1) and AuthorityKeyIdentifier taken from the
  issuer's SKI (4.2.1.1); the self-signed root carries AKI = its own SKI, which
  pkilint's chain linter requires;
* KeyUsage marked critical (4.2.1.3), with keyEncipherment only for RSA leaves
  (an EC key cannot encipher; pkilint ``pkix.key_usage_value_prohibited_for_ec``);
* BasicConstraints critical: pathlen 1 on the root, 0 on the intermediate, CA:FALSE
  on leaves (4.2.1.9), so a stolen leaf key cannot mint certificates;
* NameConstraints, critical as 4.2.1.10 requires, on the intermediate when asked; an
  intermediate limited to DNS names also *excludes* all of IPv4 and IPv6 (RFC 5280
  leaves a name type without permitted subtrees unconstrained; CA/B BR 7.1.2.5.2 excludes
  IPs the same way), and issuance enforces that even for older intermediates;
* on leaves, a subject CN only when it is one of the DNS SANs (the first), else an
  empty subject with a critical SAN (4.2.1.6): OpenSSL matches a CN against DNS name
  constraints when no DNS SAN is present, so a free-form CN could slip past them;
* a CRL distribution point when one is configured (4.2.1.13).

>>> from vaultkit.ca.keys import generate_private_key
>>> key = generate_private_key("ec-p256")
>>> root = build_root(key, "Example Root", days=30, path_length=1)
>>> root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
1
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import CAError, ConfigError
from .certs import format_san
from .keys import PrivateKey, PublicKey, check_public_key

#: Leaves are valid from five minutes ago, so a peer whose clock lags a little accepts them.
BACKDATE = dt.timedelta(minutes=5)

EKU_OIDS = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}

# RFC 1035/1123 label: letters, digits, hyphen; not starting or ending with a hyphen.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 3986 section 3.1 scheme, then only unreserved, reserved and '%' characters (2.2, 2.3):
# no control characters, spaces, quotes, '<>', backslash or non-ASCII.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: What a DNS-only intermediate excludes: every IPv4 and IPv6 address.
ALL_IPS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def random_serial() -> int:
    """A positive, non-zero serial of at most 159 bits (fits 20 DER octets, top bit clear)."""
    while True:
        serial = x509.random_serial_number()  # os.urandom(20) >> 1: <= 159 bits
        if 0 < serial < (1 << 159):
            return serial


def signing_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """SHA-384 for P-384 (matching strength), SHA-256 otherwise; None for Ed25519 (pure EdDSA)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None


def _name(common_name: str) -> x509.Name:
    if not common_name or len(common_name) > 64:  # ub-common-name (RFC 5280 appendix A)
        raise ConfigError("a common name must be 1 to 64 characters")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


# --- subject alternative names ------------------------------------------------------------


def check_dns_name(name: str, *, allow_single_label: bool = False) -> str:
    """Validate a DNS SAN (RFC 5280 4.2.1.6 "preferred name syntax"); returns it lower-cased.

    Single-label names (``localhost``, ``db``) are refused unless allowed: they are not
    unique outside one host or search domain, and linters (pkilint) reject them.
    """
    value = name.strip().lower().rstrip(".")
    if not value.isascii():
        raise ConfigError(f"DNS name {name!r} is not ASCII; give its A-label (xn--...) form")
    labels = value.split(".")
    if len(value) > 253 or not all(labels):
        raise ConfigError(f"{name!r} is not a valid DNS name")
    for i, label in enumerate(labels):
        if i == 0 and label == "*" and len(labels) > 2:
            continue  # a wildcard in the left-most label only, above a registrable name
        if not _LABEL.match(label):
            raise ConfigError(f"{name!r} is not a valid DNS name (label {label!r})")
    if len(labels) == 1 and not allow_single_label:
        raise ConfigError(f"single-label DNS name {name!r} refused: use a fully qualified name "
                          "and an IP SAN, or allow single-label names explicitly")
    return value


def parse_san(text: str, *, allow_single_label: bool = False) -> x509.GeneralName:
    """``DNS:host.example``, ``IP:10.0.0.1`` or ``URI:spiffe://trust.domain/path``.

    >>> parse_san("IP:127.0.0.1")
    <IPAddress(value=127.0.0.1)>
    """
    kind, sep, value = text.partition(":")
    kind = kind.strip().upper()
    if not sep or not value:
        raise ConfigError(f"SAN {text!r} must look like DNS:name, IP:address or URI:uri")
    if kind == "DNS":
        return x509.DNSName(check_dns_name(value, allow_single_label=allow_single_label))
    if kind == "IP":
        try:
            return x509.IPAddress(ipaddress.ip_address(value.strip()))
        except ValueError as exc:
            raise ConfigError(f"{value!r} is not an IP address") from exc
    if kind == "URI":
        return x509.UniformResourceIdentifier(check_uri(value))
    raise ConfigError(f"unsupported SAN type {kind!r} (use DNS, IP or URI)")


def check_uri(value: str) -> str:
    """A URI SAN: RFC 3986 syntax with a scheme and a host (RFC 5280 4.2.1.6).

    Control characters (a NUL hides the rest of the name from C string code) and
    anything outside RFC 3986's character set are refused, as is a bad ``%`` escape.
    """
    shown = value.encode("unicode_escape").decode("ascii")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"URI SAN {shown!r} contains a control character")
    if not _URI.match(value) or _BAD_PERCENT.search(value):
        raise ConfigError(f"URI SAN {shown!r} is not a valid RFC 3986 URI (spaces, quotes, "
                          "non-ASCII and other characters must be %-encoded)")
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise ConfigError(f"URI SAN {shown!r} needs a scheme and an authority with a host "
                          "(for example spiffe://trust.domain/workload)")
    return value


def check_common_name(common_name: str, sans: Sequence[x509.GeneralName]) -> str:
    """A leaf's CN must be one of its DNS SANs (so name constraints cover it)."""
    if not any(isinstance(s, x509.DNSName) and s.value == common_name for s in sans):
        raise CAError(f"the common name {common_name!r} must be one of the DNS SANs")
    return common_name


def check_name_constraints(sans: Sequence[x509.GeneralName], issuer: x509.Certificate) -> None:
    """Refuse SANs the issuer's NameConstraints would make every verifier reject (4.2.1.10).

    Checked at issuance so an operator learns at once, not at the first failed handshake.
    """
    try:
        nc = issuer.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return
    check_within(sans, nc)


def check_within(sans: Sequence[x509.GeneralName], nc: x509.NameConstraints | None) -> None:
    """:func:`check_name_constraints` against constraints that are not signed yet (the kill
    switch checks the new intermediate's before it revokes anything)."""
    if nc is None:
        return
    permitted = list(nc.permitted_subtrees or ())
    excluded = list(nc.excluded_subtrees or ())
    dns_only = (any(isinstance(p, x509.DNSName) for p in permitted)
                and not any(isinstance(p, x509.IPAddress) for p in permitted))
    for san in sans:
        if dns_only and isinstance(san, x509.IPAddress):
            # What name_constraints() puts on new DNS-only intermediates, enforced for
            # older ones too: an IP SAN would otherwise be unconstrained (4.2.1.10).
            raise CAError(f"{format_san(san)} is excluded: the intermediate permits DNS names "
                          "only (create it with --permit-ip to allow addresses)")
        same_type = [p for p in permitted if type(p) is type(san)]
        if any(_within(san, e) for e in excluded if type(e) is type(san)):
            raise CAError(f"{format_san(san)} is excluded by the intermediate's name constraints")
        if same_type and not any(_within(san, p) for p in same_type):
            raise CAError(f"{format_san(san)} is outside the intermediate's name constraints "
                          f"({', '.join(format_san(p) for p in same_type)})")


def _within(san: x509.GeneralName, subtree: x509.GeneralName) -> bool:
    if isinstance(san, x509.DNSName) and isinstance(subtree, x509.DNSName):
        base = subtree.value.lower().lstrip(".")
        host = san.value.lower()
        return host == base or host.endswith("." + base)
    if isinstance(san, x509.IPAddress) and isinstance(subtree, x509.IPAddress):
        net = subtree.value
        addr = san.value
        return (isinstance(net, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                and isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                and addr.version == net.version and addr in net)
    if isinstance(san, x509.UniformResourceIdentifier) and isinstance(
            subtree, x509.UniformResourceIdentifier):
        host = (urlsplit(san.value).hostname or "").lower()
        base = subtree.value.lower()
        return host.endswith(base) if base.startswith(".") else host == base
    return True


# --- certificates ---------------------------------------------------------------------------


def _ski(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _cdp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
        crl_issuer=None)])


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _validity(now: dt.datetime | None, days: int, cap: dt.datetime | None
              ) -> tuple[dt.datetime, dt.datetime]:
    if days <= 0:
        raise ConfigError("a lifetime must be at least one day")
    start = (now or utcnow()).replace(microsecond=0)
    not_after = start + dt.timedelta(days=days)
    if cap is not None and not_after > cap:
        not_after = cap  # never outlive the issuer: verifiers would reject the tail anyway
    return start - BACKDATE, not_after


def build_root(
    key: PrivateKey,
    common_name: str,
    *,
    days: int,
    path_length: int = 1,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """The self-signed root: keyCertSign + cRLSign, pathlen ``path_length``, AKI = SKI."""
    not_before, not_after = _validity(now, days, None)
    ski = _ski(key.public_key())
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
    )
    return builder.sign(key, signing_hash(key))


def build_csr(key: PrivateKey, common_name: str, *,
              constraints: x509.NameConstraints | None = None
              ) -> x509.CertificateSigningRequest:
    """A CSR with the subject name and, for an intermediate, the name constraints it asks for.

    Carrying the constraints inside the signed CSR makes it self-contained: the offline
    machine sees exactly what it is asked to sign. The root still sets every other extension.
    """
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    return builder.sign(key, signing_hash(key))


def requested_constraints(csr: x509.CertificateSigningRequest) -> x509.NameConstraints | None:
    try:
        return csr.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def check_csr(csr: x509.CertificateSigningRequest, *, allow_ca: bool = False) -> PublicKey:
    """Refuse a CSR whose self-signature is bad, or that asks to be a CA (unless ``allow_ca``)."""
    if not csr.is_signature_valid:
        raise CAError("the CSR's signature does not verify (it was altered or is corrupt)")
    try:
        bc = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    except ValueError as exc:
        raise CAError(f"the CSR has malformed extensions: {exc}") from exc
    if bc is not None and bc.ca and not allow_ca:
        raise CAError("the CSR asks for a CA certificate (basicConstraints CA:TRUE); refused")
    return check_public_key(csr.public_key())


def name_constraints(dns: Iterable[str], ips: Iterable[str]) -> x509.NameConstraints | None:
    """Permitted subtrees for DNS suffixes and IP CIDRs (None when both are empty).

    DNS suffixes without any CIDR also exclude every IPv4 and IPv6 address.
    """
    permitted: list[x509.GeneralName] = []
    for d in dns:
        # A DNS constraint "example.com" covers the host and every subdomain (4.2.1.10).
        permitted.append(x509.DNSName(check_dns_name(d.lstrip("."), allow_single_label=True)))
    for cidr in ips:
        try:
            permitted.append(x509.IPAddress(ipaddress.ip_network(cidr.strip(), strict=True)))
        except ValueError as exc:
            raise ConfigError(f"{cidr!r} is not a CIDR network (e.g. 10.0.0.0/8)") from exc
    if not permitted:
        return None
    excluded: list[x509.GeneralName] | None = None
    if not any(isinstance(p, x509.IPAddress) for p in permitted):
        excluded = [x509.IPAddress(net) for net in ALL_IPS]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded)


def sign_intermediate(
    csr: x509.CertificateSigningRequest,
    *,
    root: x509.Certificate,
    root_key: PrivateKey,
    days: int,
    path_length: int = 0,
    constraints: x509.NameConstraints | None = None,
    crl_url: str | None = None,
    now: dt.datetime | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """The intermediate: pathlen 0, name constraints (critical) when given, AKI from the root.

    Its EKU lists serverAuth and clientAuth: OpenSSL and Go treat an EKU on a CA as
    a limit on what it may issue, so a leaked intermediate cannot sign code or mail.
    """
    public_key = check_csr(csr, allow_ca=True)
    not_before, not_after = _validity(now, days, root.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject).issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(serial or random_serial())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([EKU_OIDS["serverAuth"], EKU_OIDS["clientAuth"]]),
                       critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(_aki(root), critical=False)
    )
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    if crl_url:
        builder = builder.add_extension(_cdp(crl_url), critical=False)
    return builder.sign(root_key, signing_hash(root_key))


def issue_leaf(
    public_key: PublicKey,
    sans: Sequence[x509.GeneralName],
    *,
    ekus: Sequence[str],
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    days: int,
    crl_url: str | None = None,
    now: dt.datetime | None = None,
    serial: int | None = None,
    common_name: str | None = None,
) -> x509.Certificate:
    """A leaf: CA:FALSE, KeyUsage digitalSignature (+keyEncipherment for RSA), EKU per profile.

    The subject is ``CN=<common_name>``, by default the first DNS SAN; with none
    it is empty and the SAN extension critical (RFC 5280 4.2.1.6).
    """
    if not sans:
        raise ConfigError("a leaf needs at least one SAN (--san DNS:..., IP:... or URI:...)")
    if common_name is None:
        # ub-common-name is 64: a longer DNS name stays in the SAN only.
        common_name = next((s.value for s in sans
                            if isinstance(s, x509.DNSName) and len(s.value) <= 64), None)
    subject = (_name(check_common_name(common_name, sans)) if common_name is not None
               else x509.Name([]))
    not_before, not_after = _validity(now, days, issuer.not_valid_after_utc)
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    key_usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                              key_encipherment=is_rsa, data_encipherment=False,
                              key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False)
    try:
        eku = x509.ExtendedKeyUsage([EKU_OIDS[e] for e in ekus])
    except KeyError as exc:
        raise ConfigError(f"unknown EKU {exc.args[0]!r}") from None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial or random_serial())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(eku, critical=False)
        # Critical only with an empty subject (4.2.1.6; pkilint flags a critical SAN
        # next to a non-empty subject).
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=not len(subject))
        .add_extension(_ski(public_key), critical=False)
        .add_extension(_aki(issuer), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(_cdp(crl_url), critical=False)
    return builder.sign(issuer_key, signing_hash(issuer_key))


__all__ = [
    "BACKDATE",
    "EKU_OIDS",
    "ALL_IPS",
    "build_csr",
    "build_root",
    "check_common_name",
    "check_csr",
    "check_dns_name",
    "check_name_constraints",
    "check_uri",
    "check_within",
    "issue_leaf",
    "name_constraints",
    "parse_san",
    "random_serial",
    "requested_constraints",
    "sign_intermediate",
    "signing_hash",
    "utcnow",
]
