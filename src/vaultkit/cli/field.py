"""``vaultkit field``: manage field-encryption keysets and re-encrypt columns online.

The keyset location comes from ``--keyset``, ``$VAULTKIT_FIELD_KEYSET`` or
``[field] keyset`` in the config; the database URL from ``--url`` or
``$VAULTKIT_FIELD_DB_URL`` (prefer the variable when the URL holds a password:
argv is visible to other users). The URL is never printed.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..errors import ConfigError, KeysetConflictError, KeysetError
from ._common import emit_json, handle_errors, is_tty, load_config

_KEYSET_OPT = click.option(
    "--keyset", "keyset_uri", envvar="VAULTKIT_FIELD_KEYSET", default=None,
    help="Keyset location: file://PATH, vault://MOUNT/PATH, awssm://NAME "
         "(default: $VAULTKIT_FIELD_KEYSET or [field] keyset).")
_URL_OPT = click.option(
    "--url", "db_url", envvar="VAULTKIT_FIELD_DB_URL", default=None,
    help="SQLAlchemy database URL (or $VAULTKIT_FIELD_DB_URL; never printed).")


def _keyset_uri(given: str | None) -> str:
    uri = given or load_config().section("field").get("keyset")
    if not uri:
        raise ConfigError("no keyset location: pass --keyset, set $VAULTKIT_FIELD_KEYSET or "
                          "[field] keyset")
    return str(uri)


def _load(given: str | None) -> Any:
    from ..fields import Keyset

    return Keyset.load(_keyset_uri(given), config=load_config())


def _key_id(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise ConfigError("key ids are 8 hex digits (see: vaultkit field keyset show)") from None
    if not 0 <= value < 2**32:
        raise ConfigError("key ids are 8 hex digits")
    return value


def _show(ks: Any, as_json: bool) -> None:
    info = ks.describe()
    if as_json:
        emit_json(info)
        return
    click.echo(f"keyset {info['name']}  (kek {info['kek']})")
    for k in info["keys"]:
        click.echo(f"  {k['id']}  {k['state']:<12}  {k['suite']:<12}  {k['created']}")
    for k in info["index_keys"]:
        click.echo(f"  index v{k['version']}  {k['state']}")


@click.group()
def field() -> None:
    """Field encryption: keysets and online re-encryption."""


@field.group()
def keyset() -> None:
    """Create, inspect and rotate keysets (data keys wrapped by a key provider)."""


@keyset.command("create")
@_KEYSET_OPT
@click.option("--kek", required=True, help="Key provider URI: awskms://, transit://, local://.")
@click.option("--name", default=None, help="Keyset name (default: last part of the location).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def create(keyset_uri: str | None, kek: str, name: str | None, as_json: bool) -> None:
    """Create a keyset with one primary key; refuses to replace an existing one."""
    from ..fields import Keyset

    uri = _keyset_uri(keyset_uri)
    name = name or uri.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    ks = Keyset.create(name, kek=kek, config=load_config())
    try:
        ks.save(uri, create=True)
    except KeysetConflictError as exc:
        refused: ConfigError | None = ConfigError(exc.message, reference=exc.reference)
    else:
        refused = None
    if refused is not None:  # a usage error (exit 3), raised outside the handler
        raise refused
    _show(ks, as_json)


@keyset.command("show")
@_KEYSET_OPT
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def show(keyset_uri: str | None, as_json: bool) -> None:
    """List key ids, states and suites (never key material; no unwrap happens)."""
    _show(_load(keyset_uri), as_json)


@keyset.command("rotate")
@_KEYSET_OPT
@click.option("--stage", is_flag=True,
              help="Add the new key as decrypt-only; make it primary later with 'promote' "
                   "once every process has the new keyset.")
@click.option("--index", "index_key", is_flag=True, help="Add a new blind-index key version.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def rotate(keyset_uri: str | None, stage: bool, index_key: bool, as_json: bool) -> None:
    """Add a new primary key (the old primary becomes decrypt-only)."""
    ks = _load(keyset_uri)
    if index_key:
        ks.rotate_index_key()
    else:
        ks.add_key(primary=not stage)
    ks.save()
    _show(ks, as_json)


@keyset.command("promote")
@_KEYSET_OPT
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def promote(keyset_uri: str | None, key_id: str, as_json: bool) -> None:
    """Make a staged (decrypt-only) key the primary."""
    ks = _load(keyset_uri)
    ks.promote(_key_id(key_id))
    ks.save()
    _show(ks, as_json)


@keyset.command("retire")
@_KEYSET_OPT
@_URL_OPT
@click.argument("key_id")
@click.option("--column", "columns", multiple=True, required=True, metavar="TABLE.COLUMN",
              help="A column that may hold values under the key (repeat for each).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def retire(keyset_uri: str | None, db_url: str | None, key_id: str,
           columns: tuple[str, ...], as_json: bool) -> None:
    """Retire KEY_ID, after checking that no row of the named columns still uses it."""
    from ..fields.reencrypt import count_by_key, engine_for

    ks = _load(keyset_uri)
    kid = _key_id(key_id)
    if ks.key_info(kid) is None:
        raise KeysetError(f"no key {kid:08x} in the keyset")
    if not db_url:
        raise ConfigError("retire checks the database first: pass --url or set "
                          "$VAULTKIT_FIELD_DB_URL")
    engine = engine_for(db_url)
    try:
        for spec in columns:
            table, _, column = spec.rpartition(".")
            if not table:
                raise ConfigError("--column takes TABLE.COLUMN", reference=spec)
            used = count_by_key(engine, table=table, column=column).get(kid, 0)
            if used:
                raise KeysetError(f"{used} row(s) of {spec} still use key {kid:08x}; run "
                                  "'vaultkit field reencrypt' first")
    finally:
        engine.dispose()
    ks.retire(kid)
    ks.save()
    _show(ks, as_json)


@field.command("reencrypt")
@_URL_OPT
@_KEYSET_OPT
@click.option("--table", required=True)
@click.option("--column", required=True)
@click.option("--pk", required=True, help="The primary-key column (scan order, resume point).")
@click.option("--row-column", default="row_salt", show_default=True,
              help="The row-identity column bound into each value's context.")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--from", "legacy_format", default=None,
              type=click.Choice(["fernet", "sqlalchemy-utils-aesgcm", "sqlalchemy-utils-aes",
                                 "sqlalchemy-utils-aes-pkcs5"]),
              help="Also migrate values in this old format (key from --legacy-key-env).")
@click.option("--legacy-key-env", default="VAULTKIT_FIELD_LEGACY_KEY", show_default=True,
              help="Environment variable holding the old key or passphrase.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def reencrypt(db_url: str | None, keyset_uri: str | None, table: str, column: str, pk: str,
              row_column: str, batch: int, legacy_format: str | None, legacy_key_env: str,
              as_json: bool) -> None:
    """Move every value of TABLE.COLUMN to the primary key: batched, resumable, idempotent,
    and safe while the application writes (optimistic UPDATE ... WHERE col = :old)."""
    from ..fields import FieldCipher
    from ..fields.reencrypt import reencrypt_column

    legacy = None
    if legacy_format:
        from ..fields.migrate import reader_for
        from ..secret import Secret

        key = os.environ.get(legacy_key_env)
        if not key:
            raise ConfigError(f"--from needs the old key in ${legacy_key_env}")
        legacy = reader_for(legacy_format, Secret(key))
    cipher = FieldCipher(_load(keyset_uri))
    _run_column_job(db_url, table, as_json, "re-encrypting", lambda engine, progress: (
        reencrypt_column(engine, table=table, column=column, pk=pk, cipher=cipher,
                         row_column=row_column, batch=batch, legacy=legacy,
                         progress=progress)), ("re-encrypted", "already on primary"))


def _run_column_job(db_url: str | None, table: str, as_json: bool, label: str,
                    job: Any, words: tuple[str, str] = ("rewrote", "already done")) -> None:
    """Run ``job(engine, progress)`` (a progress bar on a terminal) and report it."""
    from ..fields.reencrypt import engine_for

    if not db_url:
        raise ConfigError("pass --url or set $VAULTKIT_FIELD_DB_URL")
    engine = engine_for(db_url)
    try:
        if is_tty() and not as_json:
            from sqlalchemy import func, select

            from ..fields.reencrypt import reflect_table

            with engine.connect() as conn:
                total = conn.execute(select(func.count()).select_from(
                    reflect_table(engine, table))).scalar_one()
            with click.progressbar(length=total, label=label) as bar:
                report = job(engine, bar.update)
        else:
            report = job(engine, None)
    finally:
        engine.dispose()
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(f"scanned {report.scanned} rows: {words[0]} {report.reencrypted}, "
                   f"{words[1]} {report.skipped}, conflicts {report.conflicts}, "
                   f"failed {len(report.failed)}; {report.rows_per_second:,.0f} rows/s")
    if not report.complete:
        click.echo(f"vaultkit: {report.passes} passes ran out while the application kept "
                   "updating rows the job had read; some may still hold the old form: run "
                   "the same command again", err=True)
    if report.failed or not report.complete:
        raise click.exceptions.Exit(1)


def _column_options(fn: Any) -> Any:
    for option in reversed((
        _URL_OPT, _KEYSET_OPT,
        click.option("--table", required=True),
        click.option("--column", required=True),
        click.option("--pk", required=True,
                     help="The primary-key column (scan order, resume point)."),
        click.option("--row-column", default="row_salt", show_default=True,
                     help="The row-salt column bound into each value's context."),
        click.option("--batch", default=1000, show_default=True,
                     type=click.IntRange(1, 100_000)),
        click.option("--start-after", default=None, metavar="PK",
                     help="Resume after this primary key (the last one a killed run "
                          "committed); without it the scan restarts and skips done rows."),
        click.option("--json", "as_json", is_flag=True),
    )):
        fn = option(fn)
    return fn


@field.command("encrypt-column")
@_column_options
@click.option("--index-column", default=None,
              help="Blind-index column to fill from each plaintext (e.g. email_bi).")
@click.option("--index-name", default=None, metavar="TABLE.COLUMN",
              help="The name the index key is derived for (default TABLE.COLUMN; must "
                   "match the application's BlindIndex(column=...)).")
@click.option("--index-length", default=16, show_default=True, type=click.IntRange(4, 32))
@click.option("--index-normalizer", "index_normalizers", multiple=True,
              type=click.Choice(["strip", "casefold", "lower", "nfkc", "collapse_spaces",
                                 "digits"]),
              help="Normaliser applied before indexing, in order (repeat; must match the "
                   "application's).")
@handle_errors
def encrypt_column_cmd(db_url: str | None, keyset_uri: str | None, table: str, column: str,
                       pk: str, row_column: str, batch: int, start_after: str | None,
                       as_json: bool, index_column: str | None, index_name: str | None,
                       index_length: int, index_normalizers: tuple[str, ...]) -> None:
    """Encrypt the plaintext column TABLE.COLUMN in place: batched, resumable, idempotent.

    Deploy the dual-read column type first (docs/fields.md, "Encrypting a live plaintext
    column"): the application then writes ciphertext while this runs.
    """
    from ..fields import BlindIndex, FieldCipher
    from ..fields.column import encrypt_column

    ks = _load(keyset_uri)
    cipher = FieldCipher(ks)
    index = None
    if index_column:
        index = BlindIndex(ks, column=index_name or f"{table}.{column}", length=index_length,
                           normalizers=index_normalizers)
    _run_column_job(db_url, table, as_json, "encrypting", lambda engine, progress: (
        encrypt_column(engine, table=table, column=column, pk=pk, cipher=cipher,
                       row_column=row_column, index_column=index_column, index=index,
                       batch=batch, start_after=start_after, progress=progress)),
        ("encrypted", "already encrypted"))


@field.command("decrypt-column")
@_column_options
@handle_errors
def decrypt_column_cmd(db_url: str | None, keyset_uri: str | None, table: str, column: str,
                       pk: str, row_column: str, batch: int, start_after: str | None,
                       as_json: bool) -> None:
    """Write TABLE.COLUMN back as plaintext (for leaving vaultkit): batched, resumable.

    Deploy the dual-read type with write_plaintext=True first, so the application's new
    writes are plaintext too.
    """
    from ..fields import FieldCipher
    from ..fields.column import decrypt_column

    cipher = FieldCipher(_load(keyset_uri))
    _run_column_job(db_url, table, as_json, "decrypting", lambda engine, progress: (
        decrypt_column(engine, table=table, column=column, pk=pk, cipher=cipher,
                       row_column=row_column, batch=batch, start_after=start_after,
                       progress=progress)), ("decrypted", "already plaintext"))


