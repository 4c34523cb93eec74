"""Online re-encryption: move every value of a column to the keyset's primary key.

>>> # report = reencrypt_column("postgresql+psycopg://...", table="users", column="email",
>>> #                          pk="id", cipher=FieldCipher(Keyset.load(uri)))

How it stays safe while the application writes (``docs/fields.md``):

* **Batches** in primary-key order (``WHERE pk > :last ORDER BY pk LIMIT :batch``), one
  short transaction each, so a kill loses at most the batch in flight (rolled back).
* **Idempotent**: the key id is read from each value's header without decrypting;
  values already on the primary key are skipped, so a rerun (or a resume after a
  kill) only does the remaining work.
* **Optimistic**: ``UPDATE t SET c = :new WHERE pk = :pk AND c = :old``. If the
  application changed the value after it was read, the update matches no row and
  the newer value wins; a further pass picks it up if it is still on an old key.

The context of each value is the one the SQLAlchemy types bind:
``{"table", "column", "row": <row salt>}`` (``context_for`` overrides it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, DecryptionError
from .cipher import FieldCipher
from .format import FieldContext, key_id_of
from .rows import row_context

ContextFor = Callable[[Any], FieldContext]
Legacy = Callable[[Any], bytes]


@dataclass
class ReencryptReport:
    """What a run did. ``failed`` lists primary keys whose value could not be decrypted."""

    scanned: int = 0
    reencrypted: int = 0
    skipped: int = 0
    conflicts: int = 0
    passes: int = 0
    seconds: float = 0.0
    failed: list[Any] = field(default_factory=list)
    #: False when ``max_passes`` ran out while the application kept winning the race for
    #: some rows: those may still hold the old form; run the job again.
    complete: bool = True

    @property
    def rows_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "reencrypted": self.reencrypted,
                "skipped": self.skipped, "conflicts": self.conflicts, "passes": self.passes,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1),
                "failed": [str(f) for f in self.failed[:100]], "complete": self.complete}


def reflect_table(engine: Any, table: str) -> Any:
    """The reflected ``Table`` for ``table`` (``schema.table`` allowed)."""
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    schema, _, name = table.rpartition(".")
    try:
        return Table(name, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        pass
    raise ConfigError("no such table", reference=table)


def engine_for(url_or_engine: Any) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import Engine

    if isinstance(url_or_engine, Engine):
        return url_or_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return create_engine(url_or_engine)
    except (ArgumentError, NoSuchModuleError):
        pass
    # Never echo the URL back (it may hold a password), not even in a chained exception.
    raise ConfigError("invalid database URL")


def count_by_key(url_or_engine: Any, *, table: str, column: str) -> dict[int | None, int]:
    """How many values of ``table.column`` each key id encrypts (``None``: not vk1).

    ``keyset retire`` refuses while this shows rows for the key.
    """
    from sqlalchemy import select

    engine = engine_for(url_or_engine)
    tbl = reflect_table(engine, table)
    if column not in tbl.c:
        raise ConfigError("no such column", reference=f"{table}.{column}")
    counts: dict[int | None, int] = {}
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            select(tbl.c[column]).where(tbl.c[column].is_not(None)))
        for (value,) in result:
            kid = key_id_of(value)
            counts[kid] = counts.get(kid, 0) + 1
    return counts


def reencrypt_column(url_or_engine: Any, *, table: str, column: str, pk: str,
                     cipher: FieldCipher, row_column: str = "row_salt", batch: int = 1000,
                     context_for: ContextFor | None = None, legacy: Legacy | None = None,
                     max_passes: int = 5, start_after: Any = None,
                     progress: Callable[[int], None] | None = None,
                     on_batch: Callable[[Any], None] | None = None) -> ReencryptReport:
    """Re-encrypt ``table.column`` under the primary key, batch by batch.

    ``legacy`` reads values that are not vk1 (see :mod:`vaultkit.fields.migrate`),
    which turns this into a migration. ``progress`` is called with the number of
    rows scanned in each batch; ``on_batch`` with the last primary key of each
    committed batch (a checkpoint for ``start_after``).
    """
    from sqlalchemy import bindparam, update

    if batch < 1:
        raise ConfigError("batch must be at least 1")
    engine = engine_for(url_or_engine)
    tbl = reflect_table(engine, table)
    for name in (column, pk, row_column) if context_for is None else (column, pk):
        if name not in tbl.c:
            raise ConfigError("no such column", reference=f"{table}.{name}")
    pkc, col = tbl.c[pk], tbl.c[column]
    rowc = tbl.c[row_column] if context_for is None else pkc
    fullname = tbl.fullname

    def ctx(row_value: Any) -> FieldContext:
        if context_for is not None:
            return context_for(row_value)
        return row_context(fullname, column, row_value)

    stmt = (update(tbl).where(pkc == bindparam("_pk"), col == bindparam("_old"))
            .values({column: bindparam("_new")}))

    primary = cipher.keyset.primary_id

    def one_batch(last: Any, report: ReencryptReport) -> tuple[list[Any], int]:
        return guarded_batch(engine, pkc, (pkc, col, rowc), stmt, last, batch, lambda rows: (
            _reencrypt_rows(rows, cipher, primary, ctx, legacy, report)), report)

    return run_batches(one_batch, max_passes=max_passes, start_after=start_after,
                       progress=progress, on_batch=on_batch)


def run_batches(one_batch: Callable[[Any, ReencryptReport], tuple[list[Any], int]], *,
                max_passes: int, start_after: Any = None,
                progress: Callable[[int], None] | None = None,
                on_batch: Callable[[Any], None] | None = None) -> ReencryptReport:
    """Drive ``one_batch(last_pk, report)`` over the table in primary-key order.

    Each call reads and updates one batch in one transaction and returns the rows read
    (pk first) and how many it tried to write. A deadlock or serialization failure is
    retried (the batch was rolled back; it is idempotent). Another pass runs while the
    previous one lost optimistic updates to the application (``conflicts``).
    """
    report = ReencryptReport()
    started = time.perf_counter()
    for _ in range(max_passes):
        report.passes += 1
        pass_work = 0
        last = start_after
        while True:
            for attempt in range(_BATCH_ATTEMPTS):
                saved = dataclasses.replace(report, failed=list(report.failed))
                try:
                    rows, work = one_batch(last, report)
                    break
                except Exception as exc:
                    # A deadlock or serialization failure with the application's own
                    # transactions: the batch was rolled back; redo it (it is idempotent).
                    report = saved
                    if attempt == _BATCH_ATTEMPTS - 1 or not _retryable(exc):
                        raise
                    time.sleep(0.05 * (attempt + 1))
            if not rows:
                break
            pass_work += work
            last = rows[-1][0]
            if progress is not None:
                progress(len(rows))
            if on_batch is not None:
                on_batch(last)
        start_after = None
        if pass_work == 0 or report.conflicts == 0:
            break
    else:
        report.complete = False
    report.seconds = time.perf_counter() - started
    return report


_BATCH_ATTEMPTS = 8


def _retryable(exc: BaseException) -> bool:
    """Deadlock (40P01), serialization failure (40001) or SQLite's busy lock."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in ("40P01", "40001"):
        return True
    return "database is locked" in str(orig or "")


def guarded_batch(engine: Any, pkc: Any, columns: Sequence[Any], stmt: Any, last: Any,
                  batch: int, make_params: Callable[[list[Any]], list[dict[str, Any]]],
                  report: ReencryptReport) -> tuple[list[Any], int]:
    """Read one batch in primary-key order and apply the optimistic UPDATE ``stmt``
    (``... WHERE pk = :_pk AND col = :_old``) to the rows ``make_params`` returns, in one
    transaction. Rows whose value changed since the read are counted as conflicts."""
    from sqlalchemy import select

    with engine.begin() as conn:
        query = select(*columns).order_by(pkc).limit(batch)
        if last is not None:
            query = query.where(pkc > last)
        rows = list(conn.execute(query).all())
        params = make_params(rows) if rows else []
        if params:
            result = conn.execute(stmt, params)
            updated = result.rowcount if result.rowcount >= 0 else len(params)
            report.reencrypted += updated
            report.conflicts += len(params) - updated
        report.scanned += len(rows)
    return rows, len(params)


def _reencrypt_rows(rows: Sequence[Any], cipher: FieldCipher, primary: int,
                    ctx: Callable[[Any], FieldContext], legacy: Legacy | None,
                    report: ReencryptReport) -> list[dict[str, Any]]:
    params = []
    for pk_value, old, row_value in rows:
        if old is None:
            report.skipped += 1
            continue
        if isinstance(old, memoryview):
            old = bytes(old)
        kid = key_id_of(old)
        if kid == primary:
            report.skipped += 1
            continue
        context = ctx(row_value)
        try:
            if kid is None:
                if legacy is None:
                    raise DecryptionError()
                plain = legacy(old)
            else:
                plain = cipher.decrypt(old, context=context)
        except DecryptionError:
            report.failed.append(pk_value)
            continue
        armored = isinstance(old, str)
        new = cipher.encrypt(plain, context=context, armored=armored)
        params.append({"_pk": pk_value, "_old": old, "_new": new})
    return params


__all__ = ["ReencryptReport", "count_by_key", "engine_for", "guarded_batch", "reencrypt_column",
           "reflect_table", "run_batches"]
