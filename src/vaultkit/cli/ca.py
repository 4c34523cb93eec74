"""``vaultkit ca``: the offline root, the intermediate, and the mTLS certificates it issues.

Passphrases never come from argv: ``VAULTKIT_ROOT_PASSPHRASE`` / ``VAULTKIT_CA_PASSPHRASE``
(``VAULTKIT_LEAF_PASSPHRASE``, ``VAULTKIT_P12_PASSPHRASE``), the OS keyring (service
``vaultkit-ca``), or a hidden prompt. The library is imported lazily so ``vaultkit ca
issue`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import emit_json, handle_errors, load_config

if TYPE_CHECKING:
    from ..ca.authority import CertificateAuthority
    from ..ca.home import CAHome
    from ..ca.unlock import PendingKey

REASONS = ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
           "cessationOfOperation", "privilegeWithdrawn"]
KEY_TYPES = ["ec-p256", "ec-p384", "rsa-3072", "rsa-4096", "ed25519"]


def _prompt(label: str, new: bool) -> str:
    return str(click.prompt(label.capitalize(), hide_input=True, confirmation_prompt=new,
                            err=True))


def _home() -> CAHome:
    from ..ca.home import CAHome

    ctx = click.get_current_context()
    home = (ctx.find_root().obj or {}).get("ca_home")
    # --home / VAULTKIT_CA_HOME win over the config, which is then not even read yet.
    return CAHome(home) if home else CAHome.from_config(load_config(ctx))


def _authority(pending: PendingKey | None = None) -> CertificateAuthority:
    from .. import audit
    from ..ca.authority import CertificateAuthority
    from ..ca.passphrase import EnvKeyringPrompt

    ctx = click.get_current_context()
    config = load_config(ctx)
    home = _home()
    # The CA keeps its own JSON-lines trail unless one is configured for everything.
    audit.configure(config.audit_log or (home.root_dir / "audit.jsonl"
                                         if home.root_dir.is_dir() else None))
    ca = CertificateAuthority(home, passphrases=EnvKeyringPrompt(prompt=_prompt),
                              pending_keys=[pending] if pending else [])
    ctx.call_on_close(ca.close)
    return ca


def _start_intermediate_unlock() -> PendingKey | None:
    """The intermediate key's KDF, running while the CA modules import.

    Only with ``VAULTKIT_CA_PASSPHRASE``; anything unusual returns None and the
    ordinary path reports it.
    """
    from ..ca.unlock import unlock_with_env_passphrase
    from ..errors import VaultkitError

    try:
        key_path = _home().intermediate_key
    except VaultkitError:
        return None
    return unlock_with_env_passphrase(key_path)


@click.group()
@click.option("--home", type=click.Path(file_okay=False), envvar="VAULTKIT_CA_HOME",
              help="The CA home (default: [ca] home in the config, else ~/.config/vaultkit/ca).")
@click.pass_context
def ca(ctx: click.Context, home: str | None) -> None:
    """The offline root and the intermediate that issues mTLS certificates."""
    root = ctx.find_root()
    root.obj = {**(root.obj or {}), "ca_home": home}


@ca.command("init")
@click.option("--name", required=True, help="The root's common name.")
@click.option("--root-key-out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the encrypted root key: offline media.")
@click.option("--key-type", type=click.Choice(KEY_TYPES), help="Default: ec-p384.")
@click.option("--days", type=click.IntRange(1), help="Default: 3650.")
@handle_errors
def init(name: str, root_key_out: str, key_type: str | None, days: int | None) -> None:
    """Create the root: encrypted key at --root-key-out, HOME/root.pem, HOME/crl/root.crl."""
    from ..ca.authority import fingerprint

    authority = _authority()
    cert = authority.init_root(name, root_key_out=root_key_out, key_type=key_type, days=days)
    click.echo(f"root: {authority.home.root_cert}")
    click.echo(f"root key (encrypted, keep offline): {root_key_out}")
    click.echo(f"SHA-256 fingerprint: {fingerprint(cert)}")


@ca.group()
def intermediate() -> None:
    """Create, sign (offline) and revoke the issuing intermediate."""


@intermediate.command("create")
@click.option("--name", required=True, help="The intermediate's common name.")
@click.option("--permit-dns", multiple=True, help="Permitted DNS subtree (repeatable).")
@click.option("--permit-ip", multiple=True, help="Permitted IP range as CIDR (repeatable).")
@click.option("--key-type", type=click.Choice(KEY_TYPES), help="Default: ec-p384.")
@handle_errors
def intermediate_create(name: str, permit_dns: tuple[str, ...], permit_ip: tuple[str, ...],
                        key_type: str | None) -> None:
    """New encrypted intermediate key and HOME/intermediate.csr for the offline signing."""
    authority = _authority()
    authority.create_intermediate(name, permit_dns=list(permit_dns), permit_ip=list(permit_ip),
                                  key_type=key_type)
    click.echo(f"CSR: {authority.home.intermediate_csr}")
    click.echo(f"key (encrypted): {authority.home.intermediate_key}")
    click.echo("next, on the offline machine: vaultkit ca intermediate sign --root-key PATH")


@intermediate.command("sign")
@click.option("--root-key", required=True, type=click.Path(dir_okay=False))
@click.option("--days", type=click.IntRange(1), help="Default: 1825 (5 years).")
@handle_errors
def intermediate_sign(root_key: str, days: int | None) -> None:
    """The offline step: sign the CSR with pathlen 0 and the requested name constraints."""
    from ..ca.authority import fingerprint

    authority = _authority()
    cert = authority.sign_intermediate(root_key, days=days)
    click.echo(f"intermediate: {authority.home.intermediate_cert}")
    click.echo(f"valid until: {cert.not_valid_after_utc:%Y-%m-%d}")
    click.echo(f"SHA-256 fingerprint: {fingerprint(cert)}")


@intermediate.command("revoke")
@click.option("--root-key", required=True, type=click.Path(dir_okay=False))
@click.option("--reason", type=click.Choice(REASONS), default="keyCompromise", show_default=True)
@handle_errors
def intermediate_revoke(root_key: str, reason: str) -> None:
    """The kill switch: revoke the intermediate in the root CRL, so a new one can be made."""
    authority = _authority()
    serial = authority.revoke_intermediate(root_key, reason=reason)
    click.echo(f"revoked intermediate {serial} ({reason}); root CRL: {authority.home.root_crl}")


@ca.command("issue")
@click.argument("name")
@click.option("--profile", default="server", show_default=True,
              help="server, client, both (or one from profiles.toml).")
@click.option("--san", "sans", multiple=True, help="DNS:x, IP:y or URI:spiffe://... (repeatable).")
@click.option("--days", type=click.IntRange(1), help="Lifetime (default from the profile).")
@click.option("--key-type", type=click.Choice(KEY_TYPES))
@click.option("--csr", type=click.Path(exists=True, dir_okay=False),
              help="Sign this CSR; the key stays with the requester.")
@click.option("--out", type=click.Path(file_okay=False), help="Default: HOME/issued.")
@click.option("--p12", is_flag=True, help="Also write NAME.p12 (passphrase: prompt or env).")
@click.option("--encrypt-key", is_flag=True, help="Encrypt NAME.key (passphrase: prompt or env).")
@click.option("--allow-single-label", is_flag=True, help="Allow SANs such as DNS:localhost.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def issue(name: str, profile: str, sans: tuple[str, ...], days: int | None,
          key_type: str | None, csr: str | None, out: str | None, p12: bool, encrypt_key: bool,
          allow_single_label: bool, as_json: bool) -> None:
    """Issue NAME: writes NAME.pem, NAME.key (0600) and NAME.chain.pem."""
    authority = _authority(_start_intermediate_unlock())
    issued = authority.issue(
        name, profile=profile, sans=list(sans), days=days, key_type=key_type,
        csr=Path(csr).read_bytes() if csr else None, out_dir=out, p12=p12,
        encrypt_key=encrypt_key, allow_single_label=allow_single_label or None)
    _report(issued, as_json)


def _report(issued: Any, as_json: bool) -> None:
    data = {"name": issued.name, "serial": issued.serial, "profile": issued.profile,
            "not_after": issued.not_after.isoformat(), "sans": list(issued.sans),
            "fingerprint": issued.fingerprint, "cert": str(issued.cert_path),
            "chain": str(issued.chain_path),
            "key": str(issued.key_path) if issued.key_path else None,
            "p12": str(issued.p12_path) if issued.p12_path else None}
    if as_json:
        emit_json(data)
        return
    click.echo(f"issued {issued.name} serial {issued.serial} until {data['not_after']}")
    for label in ("cert", "chain", "key", "p12"):
        if data[label]:
            click.echo(f"  {label}: {data[label]}")


@ca.command("revoke")
@click.argument("target")
@click.option("--reason", type=click.Choice(REASONS), default="unspecified", show_default=True)
@click.option("--no-crl", is_flag=True, help="Do not re-sign the CRL now (run `ca crl` later).")
@handle_errors
def revoke(target: str, reason: str, no_crl: bool) -> None:
    """Revoke NAME (every valid certificate of it) or SERIAL (hex), and re-sign the CRL."""
    authority = _authority(None if no_crl else _start_intermediate_unlock())
    for serial in authority.revoke(target, reason=reason, regenerate_crl=not no_crl):
        click.echo(f"revoked {serial} ({reason})")


@ca.command("crl")
@click.option("--root-key", type=click.Path(dir_okay=False),
              help="Also re-sign the root CRL (offline step).")
@handle_errors
def crl_cmd(root_key: str | None) -> None:
    """Re-sign HOME/crl/intermediate.crl (and root.crl with --root-key)."""
    from cryptography import x509

    authority = _authority(_start_intermediate_unlock())
    for which, crl in authority.generate_crl(root_key=root_key).items():
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        click.echo(f"{which} CRL #{number}: {len(crl)} entries, next update "
                   f"{crl.next_update_utc:%Y-%m-%d %H:%M}Z")


@ca.command("list")
@click.option("--expiring", type=click.IntRange(0), help="Only valid certs expiring within DAYS.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def list_cmd(expiring: int | None, as_json: bool) -> None:
    """The inventory: every certificate this CA issued."""
    records = _authority().list(expiring_days=expiring)
    if as_json:
        emit_json([r.summary() for r in records])
        return
    for r in records:
        click.echo(f"{r.serial}  {r.status:<7}  {r.kind:<12}  {r.not_after}  {r.name}  "
                   f"{' '.join(r.sans)}")


@ca.command("renew")
@click.argument("name")
@click.option("--days", type=click.IntRange(1))
@click.option("--out", type=click.Path(file_okay=False), help="Default: HOME/issued.")
@click.option("--csr", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def renew(name: str, days: int | None, out: str | None, csr: str | None, as_json: bool) -> None:
    """A new certificate and key for NAME with the same profile and SANs."""
    issued = _authority(_start_intermediate_unlock()).renew(name, days=days, out_dir=out,
                                csr=Path(csr).read_bytes() if csr else None)
    _report(issued, as_json)


@ca.command("export")
@click.argument("name")
@click.option("--p12", is_flag=True, required=True, help="Export as PKCS#12 (required).")
@click.option("--legacy", is_flag=True, help="3DES/SHA-1 PKCS#12 that macOS and iOS import.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where NAME.pem and NAME.key are (default: HOME/issued).")
@click.option("--out", type=click.Path(dir_okay=False), help="Default: DIR/NAME.p12.")
@handle_errors
def export(name: str, p12: bool, legacy: bool, directory: str | None, out: str | None) -> None:
    """Bundle NAME's certificate, key and the intermediate into a PKCS#12 file (0600)."""
    path = _authority().export_p12(name, directory=directory, out=out, legacy=legacy)
    click.echo(f"wrote {path}")


@ca.command("verify")
@click.argument("cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--purpose", type=click.Choice(["server", "client", "both"]))
@click.option("--no-crl", is_flag=True, help="Skip the CRL checks.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def verify(cert: str, purpose: str | None, no_crl: bool, as_json: bool) -> None:
    """Check CERT's chain, validity, CRLs and purpose; exit 1 if it is rejected."""
    report = _authority().verify(cert, purpose=purpose, check_crl=not no_crl)
    if as_json:
        emit_json(report)
        return
    click.echo(f"OK {report['subject']} (serial {report['serial']})")
    click.echo(f"  issuer: {report['issuer']}; EKU: {', '.join(report['ekus'])}; "
               f"CRLs: {', '.join(report['crls_checked']) or 'not checked'}; "
               f"path: {report['path_builder']}")
