"""``vaultkit doctor``: what vaultkit can reach from here, without showing any secret."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from ..config import Config
from ..errors import VaultkitError
from ._common import EXIT_FAILED, emit_json, handle_errors, load_config


def _vault_report(config: Config) -> dict[str, Any]:
    if not config.vault.addr:
        return {"configured": False, "hint": "set VAULT_ADDR or [vault] addr"}
    from ..backends.vault import VaultClient

    # Doctor must answer quickly even when a server is down.
    settings = replace(config.vault, timeout=min(config.vault.timeout, 3.0))
    client = VaultClient(settings, config=config)
    report: dict[str, Any] = {"configured": True, "addresses": list(client.addresses)}
    try:
        health = client.health()
        report.update(reachable=True, address=client.address, sealed=health.get("sealed"),
                      standby=health.get("standby"), version=health.get("version"))
    except VaultkitError as exc:
        report.update(reachable=False, error=exc.category, detail=exc.message)
        return report
    from ..config import vault_env_sources

    # Which variable set each setting (BAO_* beats VAULT_*; VAULTKIT_VAULT_* beats both).
    report["from_environment"] = vault_env_sources()
    try:
        report["auth_method"] = client.login()
        report["auth_reason"] = client.auth_reason
        info = client.lookup_self()
        # Who this token is (never the token or its accessor).
        report["identity"] = {
            "display_name": info.get("display_name"), "path": info.get("path"),
            "entity_id": info.get("entity_id") or None, "policies": info.get("policies"),
            "ttl": info.get("ttl"), "renewable": info.get("renewable"),
            "meta": info.get("meta") or None}
    except VaultkitError as exc:
        report.update(auth_method=None, auth_error=exc.category, auth_detail=exc.message)
    return report


def _aws_report(config: Config) -> dict[str, Any]:
    from ..backends import aws

    report: dict[str, Any] = {"region": config.aws.region, "profile": config.aws.profile,
                              "endpoint_url": config.aws.endpoint_url}
    try:
        sess = aws.session(config)
        if sess.get_credentials() is None:
            report.update(configured=False, hint="no AWS credentials in the default chain")
            return report
        sts = aws.client("sts", config)
        with aws.aws_errors("aws", reference="sts:GetCallerIdentity"):
            ident = sts.get_caller_identity()
        report.update(configured=True, reachable=True, account=ident.get("Account"),
                      arn=ident.get("Arn"))
    except VaultkitError as exc:
        report.update(reachable=False, error=exc.category, detail=exc.message)
    return report


def _keys_report(config: Config, extra: tuple[str, ...]) -> list[dict[str, Any]]:
    from ..keys import get_key_provider
    from ..keys.local import LocalKeyStore

    uris = list(extra) + [u for u in config.section("keys").get("providers", []) if u not in extra]
    store = LocalKeyStore(config)
    if store.exists("default") and "local://default" not in uris:
        uris.insert(0, "local://default")
    results = []
    for uri in uris:
        entry: dict[str, Any] = {"uri": uri}
        try:
            provider = get_key_provider(uri, config=config)
            dk = provider.generate_data_key(context={"vaultkit": "doctor"})
            ok = provider.decrypt_data_key(dk.wrapped, context={"vaultkit": "doctor"}) == (
                dk.plaintext)
            entry.update(provider.describe(), ok=ok)
        except VaultkitError as exc:
            entry.update(ok=False, error=exc.category, detail=exc.message)
        results.append(entry)
    return results


@click.command()
@click.option("--key", "key_uris", multiple=True, metavar="URI",
              help="Also round-trip this key provider (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--strict", is_flag=True, help="Exit 1 if anything configured is unreachable.")
@handle_errors
def doctor(key_uris: tuple[str, ...], as_json: bool, strict: bool) -> None:
    """Report which config, Vault address, auth method, AWS identity and keys are reachable."""
    from .. import __version__

    config = load_config()
    vault = _vault_report(config)
    aws_report = _aws_report(config)
    keys = _keys_report(config, key_uris)
    source = config.source or "(none: defaults and environment)"
    report: dict[str, Any] = {"version": __version__, "config": source, "vault": vault,
                              "aws": aws_report, "keys": keys}
    problems = [name for name, section in (("vault", vault), ("aws", aws_report))
                if section.get("configured") and section.get("reachable") is False]
    problems += [k["uri"] for k in keys if not k.get("ok")]
    if as_json:
        emit_json(report)
    else:
        click.echo(f"vaultkit {__version__}")
        click.echo(f"config: {source}")
        for name, section in (("vault", vault), ("aws", aws_report)):
            click.echo(f"{name}:")
            for k, v in section.items():
                click.echo(f"  {k}: {v}")
        click.echo("keys:")
        if not keys:
            click.echo("  (none configured; create one with: vaultkit keys init-local)")
        for entry in keys:
            status = "OK" if entry.get("ok") else f"FAIL ({entry.get('error')})"
            click.echo(f"  {entry['uri']}: {status}")
    if strict and problems:
        raise SystemExit(EXIT_FAILED)
