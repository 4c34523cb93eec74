"""The kill switch (replace a compromised intermediate in one run) and bulk renewal.

``vaultkit ca intermediate replace --root-key PATH`` is :func:`replace_intermediate`:

1. revoke the current intermediate in the inventory, re-sign the root CRL, and move
   its files to ``HOME/retired/SERIAL/``;
2. create a new intermediate key (encrypted, ``HOME/private``) and sign it with the
   root, with the old one's name constraints unless told otherwise;
3. re-issue every still-valid leaf of the old intermediate under the new one, same
   name, profile and SANs, at the profile's lifetime: a new key when the CA holds
   it, the same public key when the requester does (``--csr`` leaves);
4. write the new intermediate's CRL.

The root key is decrypted once, the new intermediate's key is used from memory (or
decrypted once when resuming). Each step is recorded in the inventory before the
next starts, and each re-issued leaf names its predecessor (``renewed_from``), so a
run that dies anywhere, ``kill -9`` included, is finished by running the same
command again, without issuing any leaf twice.

``vaultkit ca renew --expiring 30d`` (``--all``, ``--issuer``, ``--profile``) is
:func:`renew_matching`: every current leaf that matches, with one unlock of the
intermediate key; old certificates stay valid unless ``revoke_old`` revokes them as
``superseded`` (one CRL re-signing for the batch).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from .. import audit, files
from ..errors import CAError, ConfigError, NotFoundError
from . import builders, crl, keys
from .authority import CertificateAuthority, Issued, LeafRequest, Signer
from .certs import cert_pem, common_name, load_cert, ski_hex
from .inventory import CertRecord, parse_serial, serial_hex

_PLAN = "replace_intermediate"  # inventory meta key: the replacement in progress
#: Leaves per batch: a crash loses at most one batch's work (never a leaf twice), and a
#: batch costs one inventory commit and one directory fsync instead of one per leaf.
BATCH = 25
_GENERATION = re.compile(r"^(.*) G(\d+)$")

Progress = Callable[[Issued], None]


@dataclass
class Replacement:
    """What :func:`replace_intermediate` did (public facts and paths only)."""

    old_serial: str
    new_serial: str
    new_name: str
    reissued: list[Issued] = field(default_factory=list)
    #: Re-issued by an earlier, interrupted run of the same replacement.
    earlier: list[CertRecord] = field(default_factory=list)
    resumed: bool = False

    def summary(self) -> dict[str, Any]:
        return {"revoked_intermediate": self.old_serial, "intermediate": self.new_serial,
                "intermediate_name": self.new_name, "resumed": self.resumed,
                "reissued": [i.summary() for i in self.reissued],
                "reissued_earlier": [{"name": r.name, "serial": r.serial,
                                      "renewed_from": r.renewed_from} for r in self.earlier]}


def next_generation_name(name: str) -> str:
    """``Issuing CA`` -> ``Issuing CA G2`` -> ``Issuing CA G3``: a distinct subject, so
    OpenSSL never confuses the old intermediate's CRL with the new one's."""
    match = _GENERATION.match(name)
    base, gen = (match.group(1), int(match.group(2)) + 1) if match else (name, 2)
    suffix = f" G{gen}"
    return base[:64 - len(suffix)] + suffix


def _constraints_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return [], []
    permitted = list(nc.permitted_subtrees or ())
    return ([p.value for p in permitted if isinstance(p, x509.DNSName)],
            [str(p.value) for p in permitted if isinstance(p, x509.IPAddress)])


def replace_intermediate(ca: CertificateAuthority, root_key: str | Path, *,
                         reason: str = "keyCompromise", name: str | None = None,
                         permit_dns: list[str] | None = None,
                         permit_ip: list[str] | None = None, key_type: str | None = None,
                         days: int | None = None, out_dir: str | Path | None = None,
                         progress: Progress | None = None) -> Replacement:
    """Revoke the intermediate, make and sign a new one, re-issue its leaves (see above)."""
    crl.check_reason(reason)
    home, inv = ca.home, ca.inventory
    root = ca.root_cert()
    rkey = ca.load_key(Path(root_key), "root", root)
    plan_text = inv.get_meta(_PLAN)
    resumed = plan_text is not None
    if plan_text is None:  # step 1
        old = ca.intermediate_cert()
        record = inv.get(serial_hex(old.serial_number))
        if record is None or record.status != "valid":
            raise CAError("HOME/intermediate.pem is not a valid intermediate of this CA",
                          reference=serial_hex(old.serial_number))
        dns, ips = _constraints_of(old)
        plan: dict[str, Any] = {"old_serial": record.serial, "old_ski": ski_hex(old),
                "name": name or next_generation_name(common_name(old)),
                "permit_dns": dns if permit_dns is None else permit_dns,
                "permit_ip": ips if permit_ip is None else permit_ip,
                "key_type": key_type, "days": days, "reason": reason}
        _check_reissuable(ca, plan)
        inv.set_meta(_PLAN, json.dumps(plan, sort_keys=True))
        ca.retire_intermediate(old, root, rkey, reason=reason)
    else:
        plan = json.loads(plan_text)
        current = (load_cert(home.intermediate_cert, "intermediate")
                   if home.intermediate_cert.exists() else None)
        if current is not None and serial_hex(current.serial_number) == plan["old_serial"]:
            # died inside step 1: revoking again is a no-op, the files still need to move
            ca.retire_intermediate(current, root, rkey, reason=plan["reason"])
    signer = _new_signer(ca, plan, root, rkey)  # step 2
    result = Replacement(old_serial=plan["old_serial"], new_serial=serial_hex(
        signer.cert.serial_number), new_name=common_name(signer.cert), resumed=resumed)
    _reissue(ca, signer, plan["old_ski"], out_dir, result, progress)  # step 3
    with files.file_lock(home.lock):  # step 4
        ca.write_intermediate_crl(signer)
    inv.delete_meta(_PLAN)
    audit.record("ca.intermediate.replace", target=result.new_name, serial=result.new_serial,
                 revoked=result.old_serial, reissued=len(result.reissued) + len(result.earlier))
    return result


def _check_reissuable(ca: CertificateAuthority, plan: dict[str, Any]) -> None:
    """Before anything is revoked: every leaf to re-issue must make a valid request and fit
    the new intermediate's constraints. Otherwise the run would stop after the revocation,
    and every rerun of the saved plan would stop at the same leaf."""
    constraints = builders.name_constraints(plan["permit_dns"], plan["permit_ip"])
    misfits = []
    for old in ca.inventory.current_leaves(now=builders.utcnow(), issuer_ski=plan["old_ski"],
                                           through_issuer=False):
        try:
            builders.check_within(ca.renewal_request(old).sans, constraints)
        except (CAError, ConfigError) as exc:
            misfits.append(f"{old.name} ({exc.message})")
    if misfits:
        raise ConfigError(f"cannot re-issue {len(misfits)} leaf certificate(s) under the new "
                          f"intermediate, nothing was revoked: {'; '.join(misfits[:5])}"
                          f"{' ...' if len(misfits) > 5 else ''}; widen --permit-dns/"
                          "--permit-ip, or revoke those leaves first")


def _new_signer(ca: CertificateAuthority, plan: dict[str, Any], root: x509.Certificate,
                root_key: keys.PrivateKey) -> Signer:
    """Step 2, or what a previous run of it left: the new intermediate and its key."""
    home, inv = ca.home, ca.inventory
    done = [r for r in inv.renewals_of(plan["old_serial"]) if r.kind == "intermediate"]
    if done:  # signed before a crash: install it again if needed, and unlock its key once
        cert = x509.load_pem_x509_certificate(done[0].pem.encode())
        if not home.intermediate_cert.exists() or load_cert(
                home.intermediate_cert, "intermediate").serial_number != cert.serial_number:
            files.atomic_write(home.intermediate_cert, cert_pem(cert))
        return ca.signer()
    constraints = builders.name_constraints(plan["permit_dns"], plan["permit_ip"])
    key, csr = ca.new_intermediate_key(plan["name"], constraints, plan["key_type"])
    cert = ca.sign_intermediate_csr(csr, root, root_key, days=plan["days"],
                                    renewed_from=plan["old_serial"])
    signer = Signer(cert, key)
    with files.file_lock(home.lock):
        ca.write_intermediate_crl(signer)
    return signer


def _reissue(ca: CertificateAuthority, signer: Signer, old_ski: str,
             out_dir: str | Path | None, result: Replacement, progress: Progress | None) -> None:
    inv = ca.inventory
    now = builders.utcnow()
    new_ski = ski_hex(signer.cert)
    result.earlier = [r for r in inv.current_leaves(now=now, issuer_ski=new_ski)
                      if r.renewed_from and (old := inv.get(r.renewed_from)) is not None
                      and old.issuer_ski == old_ski]
    out = Path(out_dir) if out_dir else ca.home.issued_dir
    for record in result.earlier:  # a crash between the inventory row and the files
        _complete_files(record, signer, out)
    todo = inv.current_leaves(now=now, issuer_ski=old_ski, through_issuer=False)
    result.reissued = _in_batches(ca, signer, [ca.renewal_request(old) for old in todo], out,
                                  progress)


def _complete_files(record: CertRecord, signer: Signer, out: Path) -> None:
    """Write the certificate files of a re-issued leaf whose run died before writing them."""
    cert = x509.load_pem_x509_certificate(record.pem.encode())
    cert_path = out / f"{record.name}.pem"
    try:
        on_disk = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    except (OSError, ValueError):
        on_disk = None
    if on_disk == cert.serial_number:
        return
    if record.key_holder == "ca":
        key_path = out / f"{record.name}.key"
        try:
            key = keys.load_private_key(key_path, None)
        except (CAError, OSError) as exc:
            raise CAError(f"{record.name}: the re-issued certificate's key is missing; revoke "
                          f"{record.serial} and renew {record.name}", reference=str(key_path)
                          ) from exc
        if not keys.same_public_key(key.public_key(), cert.public_key()):  # type: ignore[arg-type]
            raise CAError(f"{record.name}: {key_path} is not the re-issued certificate's key; "
                          f"revoke {record.serial} and renew {record.name}")
    files.atomic_write(cert_path, cert_pem(cert))
    files.atomic_write(out / f"{record.name}.chain.pem", cert_pem(cert) + cert_pem(signer.cert))


def _in_batches(ca: CertificateAuthority, signer: Signer, requests: list[LeafRequest],
                out_dir: str | Path | None, progress: Progress | None) -> list[Issued]:
    """Issue in batches of :data:`BATCH` (one commit and one directory fsync each)."""
    done: list[Issued] = []
    for start in range(0, len(requests), BATCH):
        batch = ca.issue_batch(signer, requests[start:start + BATCH], out_dir=out_dir)
        done += batch
        if progress is not None:
            for issued in batch:
                progress(issued)
    return done


# --- bulk renewal ----------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([dhw]?)\s*$")


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``2w`` or a bare number of days."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a duration (use 30d, 12h, 2w or a number of days)")
    n, unit = int(match.group(1)), match.group(2) or "d"
    return {"d": dt.timedelta(days=n), "h": dt.timedelta(hours=n), "w": dt.timedelta(weeks=n)
            }[unit]


def _issuer_ski(ca: CertificateAuthority, issuer: str) -> str:
    if issuer == "current":
        return ski_hex(ca.intermediate_cert())
    serial = parse_serial(issuer)
    record = ca.inventory.get(serial_hex(serial)) if serial is not None else None
    if record is None:
        found = ca.inventory.by_name(issuer, status=None, kind="intermediate")
        record = found[0] if found else None
    if record is None or record.kind != "intermediate":
        raise NotFoundError(f"no intermediate named or numbered {issuer!r}", source="ca")
    return record.ski


def renew_matching(ca: CertificateAuthority, *, expiring: dt.timedelta | None = None,
                   everything: bool = False, issuer: str | None = None,
                   profile: str | None = None, days: int | None = None,
                   out_dir: str | Path | None = None, revoke_old: bool = False,
                   progress: Progress | None = None) -> list[Issued]:
    """Renew every current leaf that matches, with one unlock of the intermediate key."""
    if expiring is None and not everything and issuer is None and profile is None:
        raise ConfigError("say which leaves to renew: --expiring, --all, --issuer or --profile")
    now = builders.utcnow()
    matching = ca.inventory.current_leaves(
        now=now, issuer_ski=_issuer_ski(ca, issuer) if issuer else None, profile=profile,
        expiring_before=now + expiring if expiring is not None else None)
    if not matching:
        return []
    signer = ca.signer()
    renewed = _in_batches(ca, signer, [ca.renewal_request(old, days=days) for old in matching],
                          out_dir, progress)
    if revoke_old:
        ca.revoke_serials([old.serial for old in matching], reason="superseded", signer=signer)
    return renewed


__all__ = ["Replacement", "next_generation_name", "parse_duration", "renew_matching",
           "replace_intermediate"]
