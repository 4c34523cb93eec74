"""Many writers: forked processes write one PostgreSQL table, each under its own nonce
prefix; one reader decrypts all of it, deriving each prefix's key once.

The issue's shape is 16 writer processes each forking 8 children (144 processes). That
is what runs here, each process writing ``PER_PROCESS`` rows, so the test stays around
ten seconds on two shared cores.
"""

# ruff: noqa: S608 - the SQL below interpolates a fixed test table name only
from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from harness.servers import Postgres
from vaultkit.fields import FieldCipher, Keyset
from vaultkit.fields.rows import row_context

pytestmark = pytest.mark.integration

WRITERS = 16
CHILDREN = 8
PER_PROCESS = 10
TABLE = "vk_many_writers"


@pytest.fixture
def table(postgres: Postgres) -> Iterator[str]:
    engine = create_engine(postgres.sqlalchemy_url())
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(text(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, writer int, "
                          "row_salt text NOT NULL, secret bytea NOT NULL)"))
    engine.dispose()
    yield postgres.sqlalchemy_url()
    engine = create_engine(postgres.sqlalchemy_url())
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
    engine.dispose()


def _write_rows(url: str, cipher: FieldCipher, who: int) -> None:
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)  # a connection of this process's own
    rows = []
    for n in range(PER_PROCESS):
        salt = os.urandom(16).hex()
        rows.append({"w": who, "s": salt, "v": cipher.encrypt(
            f"process {who} row {n}", context=row_context(TABLE, "secret", salt))})
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {TABLE} (writer, row_salt, secret) "
                          "VALUES (:w, :s, :v)"), rows)
    engine.dispose()


def _child(fn: object, *args: object) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            fn(*args)  # type: ignore[operator]
            code = 0
        finally:
            os._exit(code)
    return pid


def _wait(pids: list[int]) -> None:
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def _writer(url: str, cipher: FieldCipher, index: int) -> None:
    # Fork the children first: each inherits the cipher and must draw its own prefix.
    kids = [_child(_write_rows, url, cipher, index * 100 + k) for k in range(1, CHILDREN + 1)]
    _write_rows(url, cipher, index * 100)
    _wait(kids)


def _rows(engine: Engine) -> list[tuple[int, str, bytes]]:
    with engine.connect() as conn:
        return [(w, s, bytes(v)) for w, s, v in conn.execute(
            text(f"SELECT writer, row_salt, secret FROM {TABLE}"))]


def test_one_reader_decrypts_a_table_of_144_writing_processes(table: str) -> None:
    ks = Keyset.create("many", kek="memory://many-writers")
    cipher = FieldCipher(ks)
    cipher.encrypt(b"warm", context={"t": "x"})  # the parent holds a prefix the kids inherit
    _wait([_child(_writer, table, cipher, i) for i in range(1, WRITERS + 1)])

    engine = create_engine(table)
    rows = _rows(engine)
    engine.dispose()
    processes = WRITERS * (CHILDREN + 1)
    assert len(rows) == processes * PER_PROCESS
    prefixes = {v[5:17] for _, _, v in rows}
    assert len(prefixes) == processes  # one prefix per process, none shared after fork
    random.shuffle(rows)

    reader = FieldCipher(ks)
    for who, salt, blob in rows:
        plain = reader.decrypt(blob, context=row_context(TABLE, "secret", salt), as_str=True)
        assert plain.startswith(f"process {who} row ")
    info = reader.cache_info()
    assert info.derivations == len(prefixes)  # each prefix's key derived exactly once
    assert info.size == len(prefixes)

    # A reader with a cache smaller than the table's prefix count stays bounded.
    small = FieldCipher(ks, derived_key_cache=16)
    for _, salt, blob in rows:
        small.decrypt(blob, context=row_context(TABLE, "secret", salt))
    bounded = small.cache_info()
    assert bounded.size <= 2 * 16 and bounded.maxsize == 16
    assert len(prefixes) <= bounded.derivations <= len(rows)
