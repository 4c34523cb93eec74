"""Field encryption on real PostgreSQL: the SQLAlchemy suite, and online re-encryption
racing an application thread (no lost update, every row ends on the primary key)."""

# ruff: noqa: S608 - the SQL below interpolates fixed test table/column names only
from __future__ import annotations

import importlib.util
import random
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from harness.servers import Postgres
from vaultkit.fields import FieldCipher, FieldContext, Keyset, key_id_of
from vaultkit.fields import reencrypt as reencrypt_mod
from vaultkit.fields.reencrypt import count_by_key, reencrypt_column

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location(
    "_vk_fields_sqla_suite",
    Path(__file__).resolve().parents[1] / "unit" / "test_fields_sqlalchemy.py")
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _suite  # SQLAlchemy resolves Mapped[] annotations through it
_spec.loader.exec_module(_suite)


@pytest.fixture(scope="module")
def pg_engine(postgres: Postgres) -> Iterator[Engine]:
    eng = create_engine(postgres.sqlalchemy_url())
    yield eng
    eng.dispose()


class TestPostgres(_suite.SqlaSuite):  # type: ignore[name-defined,misc]
    @pytest.fixture
    def engine(self, pg_engine: Engine) -> Engine:
        return pg_engine


TABLE = "vk_fields_accounts"


def _ctx(salt: uuid.UUID) -> FieldContext:
    return FieldContext(table=TABLE, column="email", row=salt.hex)


@pytest.fixture
def accounts(pg_engine: Engine) -> Iterator[tuple[Keyset, FieldCipher, dict[int, uuid.UUID]]]:
    ks = Keyset.create("accounts", kek="memory://fields-pg-accounts")
    cipher = FieldCipher(ks)
    salts = {i: uuid.uuid4() for i in range(1, 3001)}
    with pg_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(text(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, row_salt uuid NOT NULL,"
                          " email bytea, note text)"))
        conn.execute(text(f"INSERT INTO {TABLE} (id, row_salt, email) VALUES (:id, :s, :e)"),
                     [{"id": i, "s": s, "e": cipher.encrypt(f"orig-{i}", context=_ctx(s))}
                      for i, s in salts.items()])
        conn.execute(text(f"INSERT INTO {TABLE} (id, row_salt, email) VALUES (0, :s, NULL)"),
                     {"s": uuid.uuid4()})
    yield ks, cipher, salts
    with pg_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))


def _final_state(engine: Engine, cipher: FieldCipher, salts: dict[int, uuid.UUID]
                 ) -> tuple[dict[int, str], set[int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, email FROM {TABLE} WHERE id > 0")).all()
    values = {i: cipher.decrypt(bytes(e), context=_ctx(salts[i]), as_str=True) for i, e in rows}
    return values, {key_id_of(bytes(e)) for _, e in rows}


class _AppWriter(threading.Thread):
    """The application: keeps updating random rows under the (new) primary key."""

    def __init__(self, engine: Engine, cipher: FieldCipher, salts: dict[int, uuid.UUID]) -> None:
        super().__init__(daemon=True)
        self.engine, self.cipher, self.salts = engine, cipher, salts
        self.expected: dict[int, str] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.updates = 0
        self.deadlocks = 0

    def run(self) -> None:
        from sqlalchemy.exc import OperationalError

        rnd = random.Random(7)
        try:
            while not self.stop.is_set():
                pending = {}
                try:
                    with self.engine.begin() as conn:
                        # Random row order on purpose: it can deadlock with the job's
                        # pk-ordered batches, which the job must survive (it retries).
                        for _ in range(5):
                            i = rnd.randint(1, 3000)
                            value = f"app-{i}-{self.updates}"
                            conn.execute(text(f"UPDATE {TABLE} SET email = :e WHERE id = :id"),
                                         {"e": self.cipher.encrypt(
                                             value, context=_ctx(self.salts[i])), "id": i})
                            pending[i] = value
                            self.updates += 1
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "40P01":
                        raise
                    self.deadlocks += 1
                    continue  # rolled back: like any application, retry later
                self.expected.update(pending)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def test_reencrypt_races_the_application(pg_engine: Engine, accounts: Any) -> None:
    ks, cipher, salts = accounts
    old = ks.primary_id
    ks.rotate()
    app = _AppWriter(pg_engine, cipher, salts)
    app.start()
    try:
        report = reencrypt_column(pg_engine, table=TABLE, column="email", pk="id",
                                  cipher=FieldCipher(ks), batch=100)
    finally:
        app.stop.set()
        app.join()
    assert app.error is None and app.updates > 0
    values, key_ids = _final_state(pg_engine, cipher, salts)
    assert key_ids == {ks.primary_id}
    for i in range(1, 3001):
        assert values[i] == app.expected.get(i, f"orig-{i}")  # no lost update
    assert report.scanned >= 3001 and not report.failed
    assert count_by_key(pg_engine, table=TABLE, column="email") == {ks.primary_id: 3000}
    assert old not in key_ids


def test_optimistic_update_never_overwrites_a_newer_value(
        pg_engine: Engine, accounts: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ks, cipher, salts = accounts
    ks.rotate()
    real = reencrypt_mod._reencrypt_rows
    raced: list[int] = []

    def racing(rows: Any, *args: Any) -> Any:
        params = real(rows, *args)
        if params and not raced:
            # Between the job's SELECT and its UPDATE, the app commits a new value.
            victim = params[0]["_pk"]
            with pg_engine.begin() as conn:
                conn.execute(text(f"UPDATE {TABLE} SET email = :e WHERE id = :id"),
                             {"e": cipher.encrypt("newer", context=_ctx(salts[victim])),
                              "id": victim})
            raced.append(victim)
        return params

    monkeypatch.setattr(reencrypt_mod, "_reencrypt_rows", racing)
    report = reencrypt_column(pg_engine, table=TABLE, column="email", pk="id",
                              cipher=cipher, batch=500)
    assert report.conflicts == 1 and report.reencrypted == 2999
    values, key_ids = _final_state(pg_engine, cipher, salts)
    assert values[raced[0]] == "newer"
    assert key_ids == {ks.primary_id}


def test_killed_job_resumes_without_losing_updates(pg_engine: Engine, accounts: Any) -> None:
    ks, cipher, salts = accounts
    ks.rotate()
    app = _AppWriter(pg_engine, cipher, salts)
    app.start()
    batches: list[Any] = []

    def die_after_three(last: Any) -> None:
        batches.append(last)
        if len(batches) == 3:
            raise KeyboardInterrupt  # the job is killed mid-run

    try:
        with pytest.raises(KeyboardInterrupt):
            reencrypt_column(pg_engine, table=TABLE, column="email", pk="id", cipher=cipher,
                             batch=200, on_batch=die_after_three)
        counts = count_by_key(pg_engine, table=TABLE, column="email")
        assert len(counts) == 2  # half done: old and new key ids present
        resumed = reencrypt_column(pg_engine, table=TABLE, column="email", pk="id",
                                   cipher=cipher, batch=200)
    finally:
        app.stop.set()
        app.join()
    assert app.error is None
    assert resumed.skipped >= 600  # the first three batches were not redone
    values, key_ids = _final_state(pg_engine, cipher, salts)
    assert key_ids == {ks.primary_id}
    for i in range(1, 3001):
        assert values[i] == app.expected.get(i, f"orig-{i}")
