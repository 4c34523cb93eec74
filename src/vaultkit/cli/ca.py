"""``vaultkit ca``: the offline root, the intermediate, and the mTLS certificates it issues.

Passphrases never come from argv: ``VAULTKIT_ROOT_PASSPHRASE`` / ``VAULTKIT_CA_PASSPHRASE``
(``VAULTKIT_LEAF_PASSPHRASE``, ``VAULTKIT_P12_PASSPHRASE``), the OS keyring (service
``vaultkit-ca``), or a hidden prompt when stdin is a terminal (otherwise a missing
passphrase is an immediate error, exit 3, naming the variable and the keyring entry).
Every command that reports something takes ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import emit_json, handle_errors, load_config, stdin_is_tty

if TYPE_CHECKING:
    from ..ca.authority import CertificateAuthority, Issued
    from ..ca.home import CAHome
    from ..ca.pbes2 import PendingKey

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
    # No terminal, no prompt: the passphrase source then fails at once, naming the
    # variable and the keyring entry, instead of click reading an empty line.
    prompt = _prompt if stdin_is_tty() else None
    ca = CertificateAuthority(home, passphrases=EnvKeyringPrompt(prompt=prompt),
                              pending_keys=[pending] if pending else [])
    ctx.call_on_close(ca.close)
    return ca


def _start_intermediate_unlock() -> PendingKey | None:
    """The intermediate key's KDF, running while the CA modules import.

    Only with ``VAULTKIT_CA_PASSPHRASE``; anything unusual returns None and the
    ordinary path reports it.
    """
    from ..ca.pbes2 import unlock_with_env_passphrase
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
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def init(name: str, root_key_out: str, key_type: str | None, days: int | None,
         as_json: bool) -> None:
    """Create the root: encrypted key at --root-key-out, HOME/root.pem, HOME/crl/root.crl."""
    authority = _authority()
    cert = authority.init_root(name, root_key_out=root_key_out, key_type=key_type, days=days)
    _emit(as_json, _cert_facts(cert, root=authority.home.root_cert,
                               root_key=root_key_out, root_crl=authority.home.root_crl),
          ["root: {root}", "root key (encrypted, keep offline): {root_key}",
           "SHA-256 fingerprint: {fingerprint}"])


def _cert_facts(cert: Any, **paths: Any) -> dict[str, Any]:
    from ..ca.certs import common_name, fingerprint

    return {"name": common_name(cert), "serial": f"{cert.serial_number:040x}",
            "not_after": cert.not_valid_after_utc.isoformat(), "fingerprint": fingerprint(cert),
            **{k: str(v) for k, v in paths.items()}}


def _emit(as_json: bool, data: Any, lines: list[str]) -> None:
    """``--json``: ``data``; else ``lines``, formatted with ``data``'s fields."""
    if as_json:
        emit_json(data)
        return
    for line in lines:
        click.echo(line.format(**data) if isinstance(data, dict) else line)


@ca.group()
def intermediate() -> None:
    """Create, sign (offline) and revoke the issuing intermediate."""


@intermediate.command("create")
@click.option("--name", required=True, help="The intermediate's common name.")
@click.option("--permit-dns", multiple=True, help="Permitted DNS subtree (repeatable).")
@click.option("--permit-ip", multiple=True, help="Permitted IP range as CIDR (repeatable).")
@click.option("--key-type", type=click.Choice(KEY_TYPES), help="Default: ec-p384.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def intermediate_create(name: str, permit_dns: tuple[str, ...], permit_ip: tuple[str, ...],
                        key_type: str | None, as_json: bool) -> None:
    """New encrypted intermediate key and HOME/intermediate.csr for the offline signing.

    With --permit-dns and no --permit-ip, all IPv4 and IPv6 addresses are excluded.
    """
    authority = _authority()
    authority.create_intermediate(name, permit_dns=list(permit_dns), permit_ip=list(permit_ip),
                                  key_type=key_type)
    home = authority.home
    _emit(as_json, {"csr": str(home.intermediate_csr), "key": str(home.intermediate_key)},
          ["CSR: {csr}", "key (encrypted): {key}",
           "next, on the offline machine: vaultkit ca intermediate sign --root-key PATH"])


@intermediate.command("sign")
@click.option("--root-key", required=True, type=click.Path(dir_okay=False))
@click.option("--days", type=click.IntRange(1), help="Default: 1825 (5 years).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def intermediate_sign(root_key: str, days: int | None, as_json: bool) -> None:
    """The offline step: sign the CSR with pathlen 0 and the requested name constraints."""
    authority = _authority()
    cert = authority.sign_intermediate(root_key, days=days)
    _emit(as_json, _cert_facts(cert, intermediate=authority.home.intermediate_cert),
          ["intermediate: {intermediate}", "valid until: {not_after}",
           "SHA-256 fingerprint: {fingerprint}"])


@intermediate.command("revoke")
@click.option("--root-key", required=True, type=click.Path(dir_okay=False))
@click.option("--reason", type=click.Choice(REASONS), default="keyCompromise", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def intermediate_revoke(root_key: str, reason: str, as_json: bool) -> None:
    """Revoke the intermediate in the root CRL and retire its files (no replacement)."""
    authority = _authority()
    serial = authority.revoke_intermediate(root_key, reason=reason)
    _emit(as_json, {"revoked": serial, "reason": reason, "root_crl": str(authority.home.root_crl)},
          ["revoked intermediate {revoked} ({reason}); root CRL: {root_crl}"])


@intermediate.command("replace")
@click.option("--root-key", required=True, type=click.Path(dir_okay=False))
@click.option("--reason", type=click.Choice(REASONS), default="keyCompromise", show_default=True)
@click.option("--name", help="The new intermediate's name (default: the old one's + G2, G3...).")
@click.option("--permit-dns", multiple=True, help="Replace the DNS constraints (repeatable).")
@click.option("--permit-ip", multiple=True, help="Replace the IP constraints (repeatable).")
@click.option("--key-type", type=click.Choice(KEY_TYPES))
@click.option("--days", type=click.IntRange(1), help="The new intermediate's lifetime.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where the re-issued leaves go (default: HOME/issued).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def intermediate_replace(root_key: str, reason: str, name: str | None,
                         permit_dns: tuple[str, ...], permit_ip: tuple[str, ...],
                         key_type: str | None, days: int | None, out: str | None,
                         as_json: bool) -> None:
    """The kill switch: revoke the intermediate, sign a new one, re-issue all its leaves.

    Resumable: after a crash, run the same command again; no leaf is issued twice.
    """
    from ..ca.rotation import replace_intermediate

    constraints_given = bool(permit_dns or permit_ip)
    result = replace_intermediate(
        _authority(), root_key, reason=reason, name=name, key_type=key_type, days=days,
        permit_dns=list(permit_dns) if constraints_given else None,
        permit_ip=list(permit_ip) if constraints_given else None, out_dir=out,
        progress=None if as_json else _print_issued)
    if as_json:
        emit_json(result.summary())
        return
    click.echo(f"revoked intermediate {result.old_serial}; new intermediate "
               f"{result.new_name!r} {result.new_serial}")
    for record in result.earlier:
        click.echo(f"re-issued by the interrupted run: {record.name} serial {record.serial}")
    click.echo(f"{len(result.reissued) + len(result.earlier)} leaves re-issued; deploy them, "
               "and both CRLs (HOME/crl/root.crl, HOME/crl/intermediate.crl)")


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
    if as_json:
        emit_json(issued.summary())
    else:
        _print_issued(issued)


def _print_issued(issued: Issued) -> None:
    data = issued.summary()
    verb = "re-issued" if issued.renewed_from else "issued"
    click.echo(f"{verb} {issued.name} serial {issued.serial} until {data['not_after']}")
    for label in ("cert", "chain", "key", "p12"):
        if data[label]:
            click.echo(f"  {label}: {data[label]}")


@ca.command("revoke")
@click.argument("target")
@click.option("--reason", type=click.Choice(REASONS), default="unspecified", show_default=True)
@click.option("--no-crl", is_flag=True, help="Do not re-sign the CRL now (run `ca crl` later).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def revoke(target: str, reason: str, no_crl: bool, as_json: bool) -> None:
    """Revoke NAME (every valid certificate of it) or SERIAL (hex), and re-sign the CRL."""
    authority = _authority(None if no_crl else _start_intermediate_unlock())
    serials = authority.revoke(target, reason=reason, regenerate_crl=not no_crl)
    _emit(as_json, {"revoked": serials, "reason": reason},
          [f"revoked {serial} ({reason})" for serial in serials])


@ca.command("crl")
@click.option("--root-key", type=click.Path(dir_okay=False),
              help="Also re-sign the root CRL (offline step).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def crl_cmd(root_key: str | None, as_json: bool) -> None:
    """Re-sign HOME/crl/intermediate.crl (and root.crl with --root-key)."""
    from cryptography import x509

    authority = _authority(_start_intermediate_unlock())
    report = {}
    for which, crl in authority.generate_crl(root_key=root_key).items():
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        report[which] = {"number": number, "entries": len(crl),
                         "next_update": crl.next_update_utc.isoformat() if crl.next_update_utc
                         else None}
    _emit(as_json, report, [f"{which} CRL #{r['number']}: {r['entries']} entries, next update "
                            f"{r['next_update']}" for which, r in report.items()])


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
        status = "revoked*" if r.revoked_via_issuer else r.status
        click.echo(f"{r.serial}  {status:<8}  {r.kind:<12}  {r.not_after}  {r.name}  "
                   f"{' '.join(r.sans)}")
    if any(r.revoked_via_issuer for r in records):
        click.echo("* revoked through its issuer (a revoked intermediate)")


@ca.command("renew")
@click.argument("name", required=False)
@click.option("--expiring", metavar="DURATION", help="Every leaf expiring within 30d, 12h, 2w...")
@click.option("--all", "everything", is_flag=True, help="Every valid leaf.")
@click.option("--issuer", help="Leaves of this intermediate (serial, name or 'current').")
@click.option("--profile", help="Leaves of this profile.")
@click.option("--revoke-old", is_flag=True,
              help="Revoke the renewed certificates as superseded (one CRL update).")
@click.option("--days", type=click.IntRange(1))
@click.option("--out", type=click.Path(file_okay=False), help="Default: HOME/issued.")
@click.option("--csr", type=click.Path(exists=True, dir_okay=False), help="With NAME only.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def renew(name: str | None, expiring: str | None, everything: bool, issuer: str | None,
          profile: str | None, revoke_old: bool, days: int | None, out: str | None,
          csr: str | None, as_json: bool) -> None:
    """Renew NAME, or every leaf matching --expiring/--all/--issuer/--profile, with the
    same profile and SANs and one unlock of the intermediate key.

    Old certificates stay valid until they expire, or until --revoke-old revokes them.
    """
    from ..ca.rotation import parse_duration, renew_matching
    from ..errors import ConfigError

    bulk = bool(expiring or everything or issuer or profile)
    if bool(name) == bulk:
        raise click.UsageError("give NAME, or one of --expiring/--all/--issuer/--profile")
    if csr and bulk:
        raise click.UsageError("--csr renews one NAME")
    authority = _authority(_start_intermediate_unlock())
    if name:
        if revoke_old:
            raise ConfigError("--revoke-old is for bulk renewal; revoke NAME's old serial "
                              "with `vaultkit ca revoke SERIAL --reason superseded`")
        issued = [authority.renew(name, days=days, out_dir=out,
                                  csr=Path(csr).read_bytes() if csr else None)]
    else:
        issued = renew_matching(
            authority, expiring=parse_duration(expiring) if expiring else None,
            everything=everything, issuer=issuer, profile=profile, days=days, out_dir=out,
            revoke_old=revoke_old, progress=None if as_json else _print_issued)
    if as_json:
        emit_json(issued[0].summary() if name else [i.summary() for i in issued])
    elif name:
        _print_issued(issued[0])
    elif not issued:
        click.echo("nothing to renew")


@ca.command("export")
@click.argument("name")
@click.option("--p12", is_flag=True, required=True, help="Export as PKCS#12 (required).")
@click.option("--legacy", is_flag=True, help="3DES/SHA-1 PKCS#12 that macOS and iOS import.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where NAME.pem and NAME.key are (default: HOME/issued).")
@click.option("--out", type=click.Path(dir_okay=False), help="Default: DIR/NAME.p12.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def export(name: str, p12: bool, legacy: bool, directory: str | None, out: str | None,
           as_json: bool) -> None:
    """Bundle NAME's certificate, key and the intermediate into a PKCS#12 file (0600)."""
    path = _authority().export_p12(name, directory=directory, out=out, legacy=legacy)
    _emit(as_json, {"p12": str(path), "legacy": legacy}, ["wrote {p12}"])


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
