"""``vaultkit keys``: create a local master key and prove a key provider round trip."""

from __future__ import annotations

import time

import click

from ..errors import KeyProviderError
from ._common import emit_json, handle_errors, load_config


@click.group()
def keys() -> None:
    """Key providers (the key-encryption keys)."""


@keys.command("init-local")
@click.argument("name", default="default")
@click.option("--store", type=click.Choice(["auto", "keyring", "file"]), default=None,
              help="Where to keep the key (default: [local_keys] store, usually auto).")
@click.option("--force", is_flag=True, help="Replace an existing key (data under it is lost).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def init_local(name: str, store: str | None, force: bool, as_json: bool) -> None:
    """Create the 256-bit master key for local://NAME (keyring, or a 0600 file)."""
    from dataclasses import replace

    from ..keys.local import LocalKeyStore

    config = load_config()
    if store:
        config = replace(config, local_keys=replace(config.local_keys, store=store))
    where = LocalKeyStore(config).create(name, overwrite=force)
    if as_json:
        emit_json({"uri": f"local://{name}", "store": str(where)})
        return
    click.echo(f"created local://{name} in {where}")


@keys.command("check")
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def check(uri: str, as_json: bool) -> None:
    """Generate, wrap and unwrap a data key with URI; print what was used, never key bytes."""
    from ..keys import get_key_provider

    config = load_config()
    provider = get_key_provider(uri, config=config)
    context = {"vaultkit": "keys-check"}
    t0 = time.perf_counter()
    dk = provider.generate_data_key(context=context)
    t1 = time.perf_counter()
    unwrapped = provider.decrypt_data_key(dk.wrapped, context=context)
    t2 = time.perf_counter()
    if unwrapped != dk.plaintext:
        raise KeyProviderError("round trip returned a different key", reference=uri)
    try:
        provider.decrypt_data_key(dk.wrapped, context={"vaultkit": "other"})
        context_bound = False
    except KeyProviderError:
        context_bound = True
    report = {
        **provider.describe(),
        "ok": True,
        "wrapped_bytes": len(dk.wrapped),
        "context_bound": context_bound,
        "generate_ms": round((t1 - t0) * 1000, 2),
        "unwrap_ms": round((t2 - t1) * 1000, 2),
    }
    if as_json:
        emit_json(report)
        return
    click.echo(f"OK {uri}")
    for k in sorted(report):
        if k not in ("ok", "uri"):
            click.echo(f"  {k}: {report[k]}")
