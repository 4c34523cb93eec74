"""``vaultkit archive``: encrypted zips and expiring share links.

The password is printed once, on stdout, and only when vaultkit generated it. A password
of your own comes from stdin (``--password-stdin``) or a hidden prompt
(``--password-prompt``), never from argv (``ps`` shows argv to every local user).
Progress bars go to stderr, only when both stdout and stderr are terminals.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from ..secret import Secret
from ._common import emit_json, handle_errors, is_tty, load_config, prompt_hidden

RETENTIONS = ["7d", "14d", "30d"]
STORE_HELP = "s3://bucket[/prefix], file://DIR or memory://name."


def _show_progress() -> bool:
    return is_tty() and sys.stderr.isatty()


@contextlib.contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    if not _show_progress() or not total:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr,
                           show_pos=False, show_percent=True) as bar:
        yield bar.update


def _read_password(from_stdin: bool, prompt: bool) -> Secret[str] | None:
    if from_stdin and prompt:
        raise click.UsageError("use either --password-stdin or --password-prompt")
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise click.UsageError("--password-stdin: no password on stdin")
        return Secret(line.rstrip("\r\n"))
    if prompt:
        return prompt_hidden("Archive password", confirm=True,
                             supply="pipe the password in with --password-stdin instead")
    return None


def _total(paths: tuple[str, ...]) -> int | None:
    from ..archive.builder import total_input_bytes

    return total_input_bytes(list(paths))


def _store(uri: str, kms_key_id: str | None) -> Any:
    from ..storage import get_store

    return get_store(uri, config=load_config(), kms_key_id=kms_key_id)


password_options = [
    click.option("--password-stdin", is_flag=True,
                 help="Read the password from the first line of stdin instead of generating one."),
    click.option("--password-prompt", is_flag=True,
                 help="Prompt for the password (hidden) instead of generating one."),
]


def _with_password_options(fn: Any) -> Any:
    for opt in reversed(password_options):
        fn = opt(fn)
    return fn


@click.group()
def archive() -> None:
    """AES-256 zips (7-Zip opens them) and expiring share links."""


@archive.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--private", is_flag=True,
              help="Hide entry names and sizes inside an inner payload.zip.")
@click.option("--level", type=click.IntRange(0, 9), default=6, show_default=True,
              help="Deflate level (0 stores).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@_with_password_options
@handle_errors
def create(out: Path, paths: tuple[str, ...], private: bool, level: int, as_json: bool,
           password_stdin: bool, password_prompt: bool) -> None:
    """Write an AES-256 zip of PATHS to OUT and print the generated password once."""
    from ..archive import write_archive

    password = _read_password(password_stdin, password_prompt)
    with _progress("Encrypting", _total(paths)) as progress:
        info = write_archive(list(paths), out, password=password, private=private,
                             compresslevel=level, progress=progress)
    report: dict[str, Any] = {"path": str(out), "size": info.size, "sha256": info.sha256,
                              "entries": info.entries, "private": private}
    if as_json:
        if info.password_generated:
            report["password"] = info.password.reveal()
        emit_json(report)
        return
    click.echo(f"wrote {out} ({info.size} bytes, {info.entries} entries, sha256 {info.sha256})")
    if info.password_generated:
        click.echo(f"password: {info.password.reveal()}")
        click.echo("(shown once: vaultkit keeps no copy)", err=True)


@archive.command("share")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--retention", type=click.Choice(RETENTIONS), default="7d", show_default=True)
@click.option("--filename", default="export.zip", show_default=True,
              help="The file name the recipient's browser saves.")
@click.option("--private", is_flag=True,
              help="Hide entry names and sizes inside an inner payload.zip.")
@click.option("--link-minutes", type=click.IntRange(1, 7 * 24 * 60), default=None,
              help="Make the link expire sooner than min(retention, 7 days).")
@click.option("--kms-key-id", default=None, help="SSE-KMS key for S3 (default: SSE-S3).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@_with_password_options
@handle_errors
def share_cmd(paths: tuple[str, ...], store_uri: str, retention: str, filename: str,
              private: bool, link_minutes: int | None, kms_key_id: str | None, as_json: bool,
              password_stdin: bool, password_prompt: bool) -> None:
    """Encrypt PATHS, upload to the store and print the link and password once."""
    from ..archive import share

    password = _read_password(password_stdin, password_prompt)
    store = _store(store_uri, kms_key_id)
    lifetime = timedelta(minutes=link_minutes) if link_minutes else None
    with _progress("Encrypting and uploading", _total(paths)) as progress:
        result = share(list(paths), store=store, retention=retention, password=password,
                       private=private, filename=filename, link_lifetime=lifetime,
                       progress=progress)
    show_password = password is None
    if as_json:
        data = result.to_dict(reveal=True)
        if not show_password:
            data.pop("password")
        emit_json(data)
        return
    click.echo(f"link: {result.link}")
    click.echo(f"link expires: {result.link_expires_at.isoformat()}")
    click.echo(f"object expires: {result.expires_at.isoformat()} (retention {retention})")
    click.echo(f"object key: {result.object_key}  (vaultkit archive revoke KEY --store ...)")
    click.echo(f"sha256: {result.sha256}")
    if show_password:
        click.echo(f"password: {result.password.reveal()}")


def _share_ref(ref: str) -> str:
    """``-`` reads the id or link from stdin: a link is a bearer URL, and argv is public."""
    if ref != "-":
        return ref
    line = sys.stdin.readline().strip()
    if not line:
        raise click.UsageError("no share id or link on stdin")
    return line


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@archive.command("list")
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@handle_errors
def list_cmd(store_uri: str, as_json: bool) -> None:
    """List shares: id, retention, created, object expiry, link expiry and state."""
    from ..archive import list_shares

    shares = list_shares(store=_store(store_uri, None))
    if as_json:
        emit_json([s.to_dict() for s in shares])
        return
    if not shares:
        click.echo("no shares")
        return
    click.echo(f"{'ID':40} {'RETENTION':9} {'CREATED (UTC)':16} {'EXPIRES':16} "
               f"{'LINK EXPIRES':16} STATE")
    for s in shares:
        click.echo(f"{s.id:40} {s.retention:9} {_when(s.created_at):16} "
                   f"{_when(s.expires_at):16} {_when(s.link_expires_at):16} {s.state}")


@archive.command()
@click.argument("ref", metavar="ID|LINK")
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def revoke(ref: str, store_uri: str, as_json: bool) -> None:
    """Delete a share now, by id or by the link the user received (- reads it from stdin);
    its links stop working."""
    from ..archive.manage import resolve_share
    from ..archive.manage import revoke as do_revoke
    from ..errors import NotFoundError

    store = _store(store_uri, None)
    ref = _share_ref(ref)
    try:
        key: str | None = resolve_share(ref, store=store)
    except NotFoundError:
        key = None
    existed = do_revoke(key, store=store) if key else False
    shown = key or ref
    if as_json:
        emit_json({"id": shown, "object_key": shown, "deleted": existed})
    elif existed:
        click.echo(f"revoked {shown}")
    else:
        click.echo(f"{shown}: already gone")


@archive.command()
@click.argument("ref", metavar="ID|LINK")
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--filename", default="export.zip", show_default=True,
              help="The file name the recipient's browser saves.")
@click.option("--link-minutes", type=click.IntRange(1, 7 * 24 * 60), default=None,
              help="Make the link expire sooner than min(remaining retention, 7 days).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def relink(ref: str, store_uri: str, filename: str, link_minutes: int | None,
           as_json: bool) -> None:
    """Print a fresh link for a share, capped by its remaining retention, 7 days and the
    signing credentials' life."""
    from ..archive.manage import relink as do_relink
    from ..archive.manage import resolve_share

    store = _store(store_uri, None)
    key = resolve_share(_share_ref(ref), store=store)
    lifetime = timedelta(minutes=link_minutes) if link_minutes else None
    link = do_relink(key, store=store, filename=filename, link_lifetime=lifetime)
    if as_json:
        emit_json({"id": key, "link": link.url, "link_expires_at": link.expires_at.isoformat()})
        return
    click.echo(f"link: {link.url}")
    click.echo(f"link expires: {link.expires_at.isoformat()}")


@archive.command()
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def purge(store_uri: str, as_json: bool) -> None:
    """Delete every object whose retention has ended (run it daily for file:// stores)."""
    removed = _store(store_uri, None).purge()
    if as_json:
        emit_json({"store": store_uri, "removed": removed})
    else:
        click.echo(f"removed {removed} expired object(s)")


@archive.command()
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--kms-key-id", default=None, help="SSE-KMS key for S3 (default: SSE-S3).")
@click.option("--dry-run", is_flag=True, help="Print the changes as a diff; change nothing.")
@click.option("--force", "force", multiple=True,
              type=click.Choice(["encryption", "public-access-block", "lifecycle"]),
              help="Also change this bucket-wide setting of an existing bucket (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@handle_errors
def setup(store_uri: str, kms_key_id: str | None, dry_run: bool, force: tuple[str, ...],
          as_json: bool) -> None:
    """Create the bucket/folder and bring vaultkit's own settings up to date.

    On S3 only policy statements and lifecycle rules named vaultkit-* are written; other
    statements and rules are kept, and bucket-wide settings of an existing bucket (default
    encryption, Block Public Access, conflicting rules) are reported, changed only with
    --force NAME.
    """
    store = _store(store_uri, kms_key_id)
    ensure_bucket = getattr(store, "ensure_bucket", None)
    if ensure_bucket is None:  # file:// and memory://: a folder with mode 0700, or nothing
        if not dry_run:
            store.ensure()
        report = {"store": store.uri, "applied": not dry_run, "changes": [], "findings": []}
        if as_json:
            emit_json(report)
        else:
            click.echo(f"{'would be ready' if dry_run else 'ready'}: {store.uri}")
        return
    plan = ensure_bucket(dry_run=dry_run, force=force)
    if as_json:
        emit_json({"store": store.uri, **plan.as_dict()})
        return
    for finding in plan.findings:
        click.echo(f"note: {finding.setting}: {finding.message}", err=True)
    if dry_run:
        diff = plan.diff()
        click.echo(diff if diff else "no changes")
        return
    if plan.changes:
        click.echo(f"updated {', '.join(plan.changes)}: {store.uri}")
    else:
        click.echo(f"already up to date: {store.uri}")
