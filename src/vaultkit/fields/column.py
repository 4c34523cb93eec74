"""Encrypt a live plaintext column in place, and decrypt it again (for leaving vaultkit).

>>> # report = encrypt_column(url, table="users", column="email", pk="id",
>>> #                        cipher=FieldCipher(ks), index_column="email_bi",
>>> #                        index=BlindIndex(ks, column="users.email"))

The runbook is in ``docs/fields.md`` ("Encrypting a live plaintext column"):
deploy the dual-read column type (it reads plaintext and ciphertext, writes
ciphertext), run this, then switch to the strict type. How it stays correct:

* **Batches** in primary-key order, one short transaction each (``run_batches`` of
  :mod:`vaultkit.fields.reencrypt`), so a kill loses at most the batch in flight.
* **Idempotent and resumable**: a value counts as encrypted only if it *decrypts*
  under its row's context; those on the primary key are skipped, so a rerun after a
  kill does only the remaining work (``start_after`` skips the scan of done batches).
* **Safe while the application writes**: ``UPDATE ... SET c = :new, bi = :index WHERE
  pk = :pk AND c = :old``. A value the application changed after the batch read it is
  left alone (the application's dual-read type wrote ciphertext and index itself);
  another pass picks up whatever is still plaintext.
* **Bound to the row**: the context is ``{"table", "column", "row": <row salt>}``, the
  one the SQLAlchemy and Django types bind, so the strict type reads every value.

Text columns get the armored form (``vk1.``...), binary columns the binary blob. A
plaintext that happens to parse as a vk1 value of this keyset but does not decrypt
is reported in ``failed`` and left as is (never overwritten, never guessed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, DecryptionError
from .blind_index import BlindIndex
from .cipher import FieldCipher
from .format import FieldContext, key_id_of
from .reencrypt import (
    ReencryptReport,
    engine_for,
    guarded_batch,
    reflect_table,
    run_batches,
)
from .rows import is_sealed, row_context

#: What a batch does to one stored value: the new stored value, or None to skip it.
_Convert = Callable[[Any, FieldContext], tuple[Any, bytes | None] | None]


def encrypt_column(url_or_engine: Any, *, table: str, column: str, pk: str,
                   cipher: FieldCipher, row_column: str = "row_salt",
                   index_column: str | None = None, index: BlindIndex | None = None,
                   batch: int = 1000, max_passes: int = 5, start_after: Any = None,
                   progress: Callable[[int], None] | None = None,
                   on_batch: Callable[[Any], None] | None = None) -> ReencryptReport:
    """Encrypt every plaintext value of ``table.column`` in place, filling ``index_column``.

    Values already encrypted under an older key are moved to the primary key on the way.
    ``report.reencrypted`` counts the values written; ``failed`` lists primary keys left
    alone (no row salt, or a vk1-looking value that does not decrypt).
    """
    if (index_column is None) != (index is None):
        raise ConfigError("index_column and index go together")
    primary = cipher.keyset.primary_id

    def convert(old: Any, ctx: FieldContext) -> tuple[Any, bytes | None] | None:
        armored = isinstance(old, str)
        plain = _decrypted(cipher, old, ctx)
        if plain is None:  # plaintext
            plain = old.encode("utf-8") if armored else old
        elif key_id_of(old) == primary:
            return None  # done already (by an earlier run or the application)
        new = cipher.encrypt(plain, context=ctx, armored=armored)
        if index is None:
            return new, None
        # The index of what the application indexes: the str of a text column (normalised),
        # the bytes of a binary one.
        text = _utf8(plain) if armored else None
        if armored and text is None:
            raise DecryptionError()
        return new, index.compute(text if text is not None else plain)

    return _migrate(url_or_engine, table=table, column=column, pk=pk, row_column=row_column,
                    index_column=index_column, batch=batch, convert=convert,
                    max_passes=max_passes, start_after=start_after, progress=progress,
                    on_batch=on_batch)


def decrypt_column(url_or_engine: Any, *, table: str, column: str, pk: str,
                   cipher: FieldCipher, row_column: str = "row_salt", batch: int = 1000,
                   max_passes: int = 5, start_after: Any = None,
                   progress: Callable[[int], None] | None = None,
                   on_batch: Callable[[Any], None] | None = None) -> ReencryptReport:
    """Write every value of ``table.column`` back as plaintext (leaving vaultkit).

    Run it while the application reads both forms and writes plaintext (the dual-read
    type with ``write_plaintext=True``). Text columns get UTF-8 text back; a value that
    is not UTF-8 is reported in ``failed``. Blind-index columns are left as they are.
    """

    def convert(old: Any, ctx: FieldContext) -> tuple[Any, bytes | None] | None:
        plain = _decrypted(cipher, old, ctx)
        if plain is None:
            return None  # plaintext already
        if not isinstance(old, str):
            return plain, None
        text = _utf8(plain)
        if text is None:
            raise DecryptionError()
        return text, None

    return _migrate(url_or_engine, table=table, column=column, pk=pk, row_column=row_column,
                    index_column=None, batch=batch, convert=convert, max_passes=max_passes,
                    start_after=start_after, progress=progress, on_batch=on_batch)


def _decrypted(cipher: FieldCipher, old: Any, ctx: FieldContext) -> bytes | None:
    """The plaintext of a stored vk1 value of this keyset, or None if the value is
    plaintext. DecryptionError if it looks like one of this keyset's values but does not
    decrypt (the row is then reported, never overwritten)."""
    if not is_sealed(old, cipher):
        return None
    return cipher.decrypt(old, context=ctx)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _as_key(pkc: Any, value: Any) -> Any:
    """A resume point typed as the primary key (``--start-after`` arrives as text)."""
    if not isinstance(value, str):
        return value
    try:
        python_type = pkc.type.python_type
    except NotImplementedError:  # a dialect type without one: compare as given
        return value
    if python_type is int:
        text = value.strip()
        if not text.lstrip("-").isdigit() or not text.isascii():
            raise ConfigError("start_after must be an integer for this primary key",
                              reference=str(pkc))
        return int(text)
    return value


def _migrate(url_or_engine: Any, *, table: str, column: str, pk: str, row_column: str,
             index_column: str | None, batch: int, convert: _Convert, max_passes: int,
             start_after: Any, progress: Callable[[int], None] | None,
             on_batch: Callable[[Any], None] | None) -> ReencryptReport:
    from sqlalchemy import bindparam, update

    if batch < 1:
        raise ConfigError("batch must be at least 1")
    engine = engine_for(url_or_engine)
    tbl = reflect_table(engine, table)
    for name in (column, pk, row_column, *((index_column,) if index_column else ())):
        if name not in tbl.c:
            raise ConfigError("no such column", reference=f"{table}.{name}")
    pkc, col, rowc = tbl.c[pk], tbl.c[column], tbl.c[row_column]
    start_after = _as_key(pkc, start_after)
    values: dict[str, Any] = {column: bindparam("_new")}
    if index_column:
        values[index_column] = bindparam("_index")
    stmt = update(tbl).where(pkc == bindparam("_pk"), col == bindparam("_old")).values(values)
    fullname = tbl.fullname

    def one_batch(last: Any, report: ReencryptReport) -> tuple[list[Any], int]:
        return guarded_batch(engine, pkc, (pkc, col, rowc), stmt, last, batch, lambda rows: (
            _convert_rows(rows, fullname, column, convert, index_column is not None, report)),
            report)

    return run_batches(one_batch, max_passes=max_passes, start_after=start_after,
                       progress=progress, on_batch=on_batch)


def _convert_rows(rows: Sequence[Any], table: str, column: str, convert: _Convert,
                  with_index: bool, report: ReencryptReport) -> list[dict[str, Any]]:
    params = []
    for pk_value, old, salt in rows:
        if old is None:
            report.skipped += 1
            continue
        if isinstance(old, memoryview):
            old = bytes(old)
        if salt is None:
            report.failed.append(pk_value)  # no row identity to bind the value to
            continue
        try:
            done = convert(old, row_context(table, column, salt))
        except DecryptionError:
            report.failed.append(pk_value)
            continue
        if done is None:
            report.skipped += 1
            continue
        new, index = done
        row = {"_pk": pk_value, "_old": old, "_new": new}
        if with_index:
            row["_index"] = index
        params.append(row)
    return params


__all__ = ["decrypt_column", "encrypt_column"]
