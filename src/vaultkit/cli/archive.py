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
from ._common import emit_json, handle_errors, is_tty, load_config

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
        value = click.prompt("Archive password", hide_input=True, confirmation_prompt=True)
        return Secret(str(value))
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


@archive.command()
@click.argument("key")
@click.option("--store", "store_uri", required=True, help=STORE_HELP)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def revoke(key: str, store_uri: str, as_json: bool) -> None:
    """Delete a shared archive now; its links stop working."""
    from ..archive import revoke as do_revoke

    existed = do_revoke(key, store=_store(store_uri, None))
    if as_json:
        emit_json({"object_key": key, "deleted": existed})
    elif existed:
        click.echo(f"revoked {key}")
    else:
        click.echo(f"{key}: already gone")


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
@handle_errors
def setup(store_uri: str, kms_key_id: str | None) -> None:
    """Create the bucket/folder with lifecycle, encryption and public-access settings."""
    store = _store(store_uri, kms_key_id)
    store.ensure()
    click.echo(f"ready: {store.uri}")
