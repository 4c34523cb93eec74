"""``vaultkit secrets``: check, plan and read boot secrets; manage encrypted secret files.

Specs come from ``[secrets]`` in the config, ``--spec FILE`` (TOML/JSON: a
``[secrets]`` table or a top-level mapping of NAME = "reference"), or
``-s NAME=REF`` options. References are not secrets, so argv is fine for them;
values never are, and no command here prints one without ``--reveal``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ..config import Config
from ..errors import ConfigError
from ._common import EXIT_FAILED, EXIT_USAGE, emit_json, handle_errors, load_config

spec_options = [
    click.option("--spec", "spec_file", type=click.Path(dir_okay=False, exists=True),
                 help="TOML/JSON file of NAME = reference (default: [secrets] in the config)."),
    click.option("-s", "--secret", "pairs", multiple=True, metavar="NAME=REF",
                 help="Add one NAME=reference (repeatable)."),
    click.option("--deadline", type=float, default=10.0, show_default=True,
                 help="Seconds the whole load may take."),
]


def with_spec_options(fn: Any) -> Any:
    for option in reversed(spec_options):
        fn = option(fn)
    return fn


def read_spec(spec_file: str | None, pairs: tuple[str, ...]) -> dict[str, str] | None:
    """The spec from ``--spec``/``-s``, or ``None`` to use the config's ``[secrets]``."""
    if not spec_file and not pairs:
        return None
    spec: dict[str, str] = {}
    if spec_file:
        from ..secrets.envfile import parse

        path = Path(spec_file)
        doc = parse(path.read_text(encoding="utf-8"),
                    "toml" if path.suffix == ".toml" else "json", reference=str(path))
        table = doc.get("secrets", doc)
        if not isinstance(table, dict):
            raise ConfigError("the spec file needs a [secrets] table", reference=str(path))
        for name, ref in table.items():
            if name == "options" and isinstance(ref, dict):
                continue
            if not isinstance(ref, str):
                raise ConfigError(f"{name} must be a reference string", reference=str(path))
            spec[name] = ref
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=REF, got {pair!r}", param_hint="-s")
        spec[name] = ref
    return spec


def resolve_spec(spec_file: str | None, pairs: tuple[str, ...]
                 ) -> tuple[dict[str, str], dict[str, Any], Config, str]:
    """``(spec, options, config, origin)``: where the spec came from is ``origin``.

    ``--spec``/``-s`` first; then the config named by ``vaultkit --config`` or
    ``$VAULTKIT_CONFIG``; then ``./vaultkit.toml`` or ``[tool.vaultkit]`` in
    ``./pyproject.toml``; then the nearest ``vaultkit.toml`` above, up to the
    repository root (``.git``). No spec at all is :class:`SpecNotFoundError`.
    """
    from ..config import Config
    from ..secrets.discovery import SpecNotFoundError, find_spec_file
    from ..secrets.loader import spec_from_config

    ctx = click.get_current_context()
    spec = read_spec(spec_file, pairs)
    config = load_config(ctx)
    if spec is not None:
        origin = spec_file or "-s options"
        return spec, _spec_options(spec_file), config, origin
    explicit = (ctx.find_root().obj or {}).get("config_path")
    if not explicit and config.source is None:
        # Nothing in the working directory (vaultkit.toml or [tool.vaultkit]): look upward.
        found = find_spec_file()
        if found is not None:
            config = Config.load(found)
            root = ctx.find_root()
            root.obj = {**(root.obj or {}), "config": config}
    if config.source is None:
        raise SpecNotFoundError("no secrets spec: no --spec/-s, no vaultkit.toml from here up "
                                "to the repository root, and no --config")
    spec, options = spec_from_config(config)
    if not spec:
        raise SpecNotFoundError("the config has no [secrets] table", reference=config.source)
    return spec, options, config, config.source


def _spec_options(spec_file: str | None) -> dict[str, Any]:
    if not spec_file:
        return {}
    from ..secrets.envfile import parse

    path = Path(spec_file)
    doc = parse(path.read_text(encoding="utf-8"), "toml" if path.suffix == ".toml" else "json",
                reference=str(path))
    table = doc.get("secrets", doc)
    options = table.get("options") if isinstance(table, dict) else None
    return dict(options) if isinstance(options, dict) else {}


@click.group()
def secrets() -> None:
    """Check, plan and read the secrets a service boots with."""


@secrets.command("check")
@with_spec_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def check(spec_file: str | None, pairs: tuple[str, ...], deadline: float, as_json: bool) -> None:
    """Resolve every secret; print OK or the failure per name (never a value)."""
    from ..secrets import resolve

    spec, options, config, origin = resolve_spec(spec_file, pairs)
    loaded, failures = resolve(spec, deadline=deadline, config=config, options=options)
    names = sorted(set(loaded.plan.refs) | set(failures))
    report = []
    for name in names:
        ref = loaded.plan.refs.get(name)
        shown = ref.display if ref else (failures[name].reference or "")
        if name in failures:
            err = failures[name]
            report.append({"name": name, "reference": shown, "ok": False,
                           "category": err.category, "message": err.message})
        else:
            report.append({"name": name, "reference": shown, "ok": True,
                           "absent": name in loaded.absent})
    if as_json:
        emit_json({"ok": not failures, "spec": origin, "secrets": report,
                   "calls": loaded.plan.counts()})
    else:
        click.echo(f"spec: {origin}")
        for row in report:
            if row["ok"]:
                extra = " (optional, absent)" if row.get("absent") else ""
                click.echo(f"OK    {row['name']}  {row['reference']}{extra}")
            else:
                click.echo(f"FAIL  {row['name']}  {row['reference']}: {row['category']}: "
                           f"{row['message']}")
        click.echo(f"{len(report) - len(failures)}/{len(report)} secrets OK")
    if failures:
        sys.exit(EXIT_FAILED)


@secrets.command("plan")
@with_spec_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def plan(spec_file: str | None, pairs: tuple[str, ...], deadline: float, as_json: bool) -> None:
    """Print the API calls a boot would make (wildcards are listed; no value is read)."""
    from ..secrets import make_plan
    from ..secrets.sources import default_sources

    spec, options, config, origin = resolve_spec(spec_file, pairs)
    table = default_sources(config, kv_versions=options.get("kv_versions"))
    the_plan = make_plan(spec, table, deadline=deadline)
    expansions = {name: sorted(names) for name, names in the_plan.expanded.items()}
    if as_json:
        emit_json({"spec": origin,
                   "calls": [{"source": c.source, "operation": c.operation, "target": c.target,
                              "references": [u.display for u in c.units]}
                             for c in the_plan.calls],
                   "counts": the_plan.counts(), "expanded": expansions,
                   "invalid": {n: str(e) for n, e in the_plan.invalid.items()}})
        if the_plan.invalid:
            sys.exit(EXIT_FAILED)
        return
    batched = [c for c in the_plan.calls if c.source == "vault" and len(c.units) > 1]
    extra = (f" (the {sum(len(c.units) for c in batched)} Vault GETs in one parallel batch)"
             if batched else "")
    click.echo(f"spec: {origin}")
    click.echo(f"{len(the_plan.refs) + len(the_plan.invalid)} names -> {len(the_plan.units)} "
               f"fetch units -> {len(the_plan.calls)} API calls{extra}")
    for name, names in sorted(expansions.items()):
        ref = spec.get(name, "")
        click.echo(f"  {name} = {ref} expanded to {len(names)} name(s): {', '.join(names)}")
    for line in the_plan.describe():
        click.echo(f"  {line}")
    if any(c.source == "vault" for c in the_plan.calls):
        click.echo("  (+ one sys/internal/ui/mounts lookup per KV mount, unless [secrets.options]"
                   " kv_versions names it)")
    for name, err in sorted(the_plan.invalid.items()):
        click.echo(f"  INVALID {name}: {err}")
    if the_plan.invalid:
        sys.exit(EXIT_FAILED)


@secrets.command("get")
@click.argument("name")
@with_spec_options
@click.option("--reveal", is_flag=True, help="Really print the value to stdout.")
@handle_errors
def get(name: str, spec_file: str | None, pairs: tuple[str, ...], deadline: float,
        reveal: bool) -> None:
    """Print one secret's value; refuses without --reveal."""
    if not reveal:
        click.echo("vaultkit: refusing to print a secret value; add --reveal (or use "
                   "'vaultkit secrets check' to test it loads)", err=True)
        sys.exit(EXIT_USAGE)
    from ..secrets import load_secrets

    spec, _, config, _ = resolve_spec(spec_file, pairs)
    if name not in spec:
        raise ConfigError(f"no secret named {name!r} in the spec")
    loaded = load_secrets({name: spec[name]}, deadline=deadline, config=config)
    click.echo(loaded.reveal(name))


# --- encrypted files ------------------------------------------------------------------

@secrets.command("encrypt")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--key-provider", "key_uri", default="local://default", show_default=True,
              help="KEK URI (local://, memory://, awskms://, transit://).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write here instead of replacing FILE.")
@handle_errors
def encrypt(file: str, key_uri: str, output: str | None) -> None:
    """Encrypt every value of a JSON/TOML FILE (keys stay readable), in place by default."""
    from ..keys import get_key_provider
    from ..secrets import envfile

    doc = envfile.read_document(file)
    if envfile.is_encrypted(doc):
        raise ConfigError("the file is already encrypted", reference=file)
    provider = get_key_provider(key_uri, config=load_config())
    target = output or file
    envfile.write_document(target, envfile.encrypt_document(doc, provider))
    click.echo(f"encrypted {len(list(envfile._leaves(doc)))} values of {file} under {key_uri}"
               f" -> {target}")


@secrets.command("decrypt")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the plaintext here (mode 0600).")
@click.option("--reveal", is_flag=True, help="Print the plaintext to stdout.")
@handle_errors
def decrypt(file: str, output: str | None, reveal: bool) -> None:
    """Decrypt FILE to --output (0600) or, with --reveal, to stdout."""
    from ..files import write_private
    from ..secrets import envfile

    if not output and not reveal:
        click.echo("vaultkit: refusing to print plaintext; add --reveal or --output FILE",
                   err=True)
        sys.exit(EXIT_USAGE)
    doc = envfile.read_document(file)
    plain = envfile.decrypt_document(doc, config=load_config())
    if output:
        write_private(output, envfile.dumps(plain, envfile.file_format(output)).encode())
        click.echo(f"decrypted {file} -> {output} (mode 0600)")
    else:
        click.echo(envfile.dumps(plain, envfile.file_format(file)), nl=False)


@secrets.command("edit")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@handle_errors
def edit(file: str) -> None:
    """Decrypt FILE into $VISUAL/$EDITOR and re-encrypt what changed.

    The plaintext lives only while the editor runs, in a 0600 file inside a fresh
    0700 directory on /dev/shm (else $XDG_RUNTIME_DIR, else the temp dir), and is
    removed however the edit ends: editor failure, SIGINT, SIGTERM, SIGHUP.
    Unchanged values keep their ciphertext.
    """
    from ..secrets import envfile
    from ..secrets.editing import EditInterrupted, plaintext_file

    config = load_config()
    doc = envfile.read_document(file)
    provider = envfile.provider_for(doc, config)
    plain = envfile.decrypt_document(doc, provider=provider)
    fmt = envfile.file_format(file)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        with plaintext_file(f"edit.{fmt}", envfile.dumps(plain, fmt).encode()) as path:
            rc = subprocess.call([*shlex.split(editor), str(path)])  # noqa: S603 - the editor
            if rc != 0:
                raise ConfigError(f"the editor exited with status {rc}; the file is unchanged",
                                  reference=file)
            text = envfile.utf8_or_none(path.read_bytes())
            if text is None:  # raised outside the decode: the error would hold the plaintext
                raise ConfigError("the edited text is not UTF-8; the file is unchanged",
                                  reference=file)
            edited = envfile.parse(text, fmt, reference=file)
    except EditInterrupted as exc:
        click.echo(f"vaultkit: {exc}; the plaintext was removed and {file} is unchanged",
                   err=True)
        sys.exit(128 + exc.signum)
    if edited == plain:
        click.echo("no changes")
        return
    envfile.write_document(file, envfile.encrypt_document(edited, provider, previous=doc))
    changed = sorted(k for k in set(edited) | set(plain) if edited.get(k) != plain.get(k))
    click.echo(f"re-encrypted {file}; changed: {', '.join(changed)}")
