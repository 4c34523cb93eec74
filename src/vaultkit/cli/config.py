"""``vaultkit config show``: the effective configuration and where each value comes from.

Like ``git config --list --show-origin``: one line per setting, its origin first
(``FILE:LINE``, ``env:VAR`` or ``default``). Secret-bearing settings are masked.
"""

from __future__ import annotations

import json

import click

from ._common import emit_json, handle_errors, load_config


def _display(reference: str) -> str:
    from ..errors import VaultkitError
    from ..secrets.refs import parse_reference

    try:
        return parse_reference(reference).display
    except VaultkitError:
        return reference.split("?", 1)[0]  # shown as invalid elsewhere; keep options out


@click.group("config")
def config() -> None:
    """Inspect the configuration (see docs/config.md for every setting)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def show(as_json: bool) -> None:
    """Every effective setting with its origin: FILE:LINE, env:VAR or default."""
    from ..config_reference import explain

    cfg = load_config()
    rows = explain(cfg, display=_display)
    if as_json:
        emit_json({"file": cfg.source, "settings": [r.as_dict() for r in rows]})
        return
    click.echo(f"# config file: {cfg.source or '(none: defaults and environment)'}")
    width = max(len(r.origin) for r in rows)
    for r in rows:
        value = "(unset)" if r.value is None else (
            r.value if isinstance(r.value, str) else json.dumps(r.value))
        click.echo(f"{r.origin:<{width}}  {r.name}={value}")
