"""``vaultkit secrets``: check, plan and read boot secrets; manage encrypted secret files.

Specs come from ``[secrets]`` in the config, ``--spec FILE`` (TOML/JSON: a
``[secrets]`` table or a top-level mapping of NAME = "reference"), or
``-s NAME=REF`` options. References are not secrets, so argv is fine for them;
values never are, and no command here prints one without ``--reveal``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

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

    config = load_config()
    loaded, failures = resolve(read_spec(spec_file, pairs), deadline=deadline, config=config)
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
        emit_json({"ok": not failures, "secrets": report, "calls": loaded.plan.counts()})
    else:
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
    """Print the API calls a boot would make (makes none)."""
    from ..secrets import make_plan
    from ..secrets.loader import spec_from_config
    from ..secrets.sources import default_sources

    config = load_config()
    spec = read_spec(spec_file, pairs)
    options: dict[str, Any] = {}
    if spec is None:
        spec, options = spec_from_config(config)
    the_plan = make_plan(spec, default_sources(config, kv_versions=options.get("kv_versions")))
    if as_json:
        emit_json({"calls": [{"source": c.source, "operation": c.operation, "target": c.target,
                              "references": [u.display for u in c.units]}
                             for c in the_plan.calls],
                   "counts": the_plan.counts(),
                   "invalid": {n: str(e) for n, e in the_plan.invalid.items()}})
        return
    batched = [c for c in the_plan.calls if c.source == "vault" and len(c.units) > 1]
    extra = (f" (the {sum(len(c.units) for c in batched)} Vault GETs in one multiplexed batch,"
             " one thread)" if batched else "")
    click.echo(f"{len(spec)} names -> {len(the_plan.units)} fetch units -> "
               f"{len(the_plan.calls)} API calls{extra}")
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

    config = load_config()
    spec = read_spec(spec_file, pairs)
    if spec is None:
        from ..secrets.loader import spec_from_config

        spec = spec_from_config(config)[0]
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


def _private_dir() -> str:
    """A fresh 0700 directory, on tmpfs (/dev/shm) when there is one, so plaintext stays in RAM."""
    for base in (os.environ.get("VAULTKIT_EDIT_DIR"), "/dev/shm", None):  # noqa: S108
        if base is None or (os.path.isdir(base) and os.access(base, os.W_OK)):
            return tempfile.mkdtemp(prefix="vaultkit-edit-", dir=base)
    return tempfile.mkdtemp(prefix="vaultkit-edit-")  # pragma: no cover


@contextlib.contextmanager
def _plaintext_file(name: str, data: bytes) -> Iterator[Path]:
    """A 0600 file in a private 0700 dir, overwritten and removed in ``finally``."""
    directory = _private_dir()
    path = Path(directory) / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            size = path.stat().st_size
            with path.open("r+b") as fh:  # best effort: tmpfs pages are not on disk anyway
                fh.write(b"\0" * size)
        shutil.rmtree(directory, ignore_errors=True)


@secrets.command("edit")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@handle_errors
def edit(file: str) -> None:
    """Decrypt FILE into $VISUAL/$EDITOR and re-encrypt what changed.

    The plaintext lives only while the editor runs, in a 0600 file inside a
    0700 directory on tmpfs when /dev/shm exists, and is removed in a finally
    block (even if the editor fails). Unchanged values keep their ciphertext.
    """
    from ..secrets import envfile

    config = load_config()
    doc = envfile.read_document(file)
    provider = envfile.provider_for(doc, config)
    plain = envfile.decrypt_document(doc, provider=provider)
    fmt = envfile.file_format(file)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with _plaintext_file(f"edit.{fmt}", envfile.dumps(plain, fmt).encode()) as path:
        rc = subprocess.call([*shlex.split(editor), str(path)])  # noqa: S603 - the user's editor
        if rc != 0:
            raise ConfigError(f"the editor exited with status {rc}; the file is unchanged",
                              reference=file)
        edited = envfile.parse(path.read_text(encoding="utf-8"), fmt, reference=file)
    if edited == plain:
        click.echo("no changes")
        return
    envfile.write_document(file, envfile.encrypt_document(edited, provider, previous=doc))
    changed = sorted(k for k in set(edited) | set(plain) if edited.get(k) != plain.get(k))
    click.echo(f"re-encrypted {file}; changed: {', '.join(changed)}")
