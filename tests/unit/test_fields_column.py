"""Encrypting a live plaintext column (SQLite): the library functions, the dual-read
SQLAlchemy type, and ``vaultkit field encrypt-column``/``decrypt-column`` with --json."""


from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from vaultkit.cli import cli
from vaultkit.errors import ConfigError, DecryptionError
from vaultkit.fields import BlindIndex, FieldCipher, Keyset, armor, key_id_of
from vaultkit.fields.column import decrypt_column, encrypt_column
from vaultkit.fields.rows import row_context
from vaultkit.fields.sqlalchemy import EncryptedString, blind_index_column, row_salt_column
from vaultkit.keys.local import LocalKeyStore

N = 240


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    name = f"col-{os.urandom(3).hex()}"
    LocalKeyStore().create(name)
    uri = f"file://{tmp_path}/users.json"
    ks = Keyset.create("users", kek=f"local://{name}")
    ks.save(uri, create=True)
    url = f"sqlite:///{tmp_path}/app.sqlite"
    engine = create_engine(url)
    salts = {i: uuid.uuid4() for i in range(1, N + 1)}
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, row_salt CHAR(32) "
                          "NOT NULL, email TEXT, email_bi BLOB)"))
        conn.execute(text("INSERT INTO users (id, row_salt, email) VALUES (:i, :s, :e)"),
                     [{"i": i, "s": s.hex, "e": None if i % 50 == 0 else f" User{i}@X.org"}
                      for i, s in salts.items()])
    yield {"ks": ks, "uri": uri, "url": url, "engine": engine, "salts": salts,
           "env": {"VAULTKIT_FIELD_KEYSET": uri, "VAULTKIT_FIELD_DB_URL": url}}
    engine.dispose()


def _index(ks: Keyset) -> BlindIndex:
    return BlindIndex(ks, column="users.email", normalizers=("strip", "casefold"))


def _rows(engine: Engine) -> dict[int, tuple[Any, Any, Any]]:
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
            text("SELECT id, row_salt, email, email_bi FROM users"))}


def _expected(i: int) -> str | None:
    return None if i % 50 == 0 else f" User{i}@X.org"


def _assert_all_encrypted(engine: Engine, ks: Keyset) -> None:
    cipher, index = FieldCipher(ks), _index(ks)
    for i, (salt, email, bi) in _rows(engine).items():
        if _expected(i) is None:
            assert email is None and bi is None
            continue
        assert email.startswith("vk1.") and key_id_of(email) == ks.primary_id
        ctx = row_context("users", "email", salt)
        assert cipher.decrypt(email, context=ctx, as_str=True) == _expected(i)
        assert bi == index.compute(_expected(i) or "")


def test_encrypt_column_is_batched_idempotent_and_fills_the_index(setup: Any) -> None:
    ks, engine = setup["ks"], setup["engine"]
    cipher = FieldCipher(ks)
    checkpoints: list[Any] = []
    report = encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                            index_column="email_bi", index=_index(ks), batch=50,
                            on_batch=checkpoints.append)
    assert report.reencrypted == N - N // 50 and report.skipped == N // 50
    assert not report.failed and checkpoints == [50, 100, 150, 200, 240]
    _assert_all_encrypted(engine, ks)
    again = encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                           index_column="email_bi", index=_index(ks))
    assert again.reencrypted == 0 and again.skipped == N  # idempotent
    # A rotation: the same command moves every value to the new primary key.
    ks.rotate()
    moved = encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                           index_column="email_bi", index=_index(ks))
    assert moved.reencrypted == N - N // 50
    _assert_all_encrypted(engine, ks)
    # ...and decrypt-column takes the table back to the original plaintext.
    back = decrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                          batch=70)
    assert back.reencrypted == N - N // 50 and not back.failed
    assert {i: e for i, (_, e, _) in _rows(engine).items()} == {
        i: _expected(i) for i in range(1, N + 1)}
    assert decrypt_column(engine, table="users", column="email", pk="id",
                          cipher=cipher).reencrypted == 0


def test_rows_that_cannot_be_bound_or_read_are_reported_not_touched(setup: Any) -> None:
    ks, engine = setup["ks"], setup["engine"]
    cipher = FieldCipher(ks)
    foreign = cipher.encrypt("x", context=row_context("users", "email", "another-row"),
                             armored=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET email = :e WHERE id = 7"), {"e": foreign})
    report = encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher)
    assert report.failed == [7]  # a vk1 value of this keyset bound to another row
    assert _rows(engine)[7][1] == foreign
    with pytest.raises(ConfigError):
        encrypt_column(engine, table="users", column="nope", pk="id", cipher=cipher)
    with pytest.raises(ConfigError):
        encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                       index_column="email_bi")


def test_dual_read_type_reads_both_and_writes_ciphertext(setup: Any) -> None:
    ks, engine, salts = setup["ks"], setup["engine"], setup["salts"]
    cipher = FieldCipher(ks)
    index = _index(ks)

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        row_salt: Mapped[uuid.UUID] = row_salt_column()
        email: Mapped[str | None] = mapped_column(
            EncryptedString(cipher, armored=True, accept_plaintext=True))
        email_bi: Mapped[bytes | None] = blind_index_column("email", index)

    # Half the table is encrypted (a migration in flight), half is still plaintext.
    with pytest.raises(_Stop):  # killed after three batches
        encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                       index_column="email_bi", index=index, batch=40,
                       on_batch=lambda last: _stop_after(last, 120))
    with Session(engine) as s:
        users = {u.id: u for u in s.scalars(select(User))}
        assert {i: u.email for i, u in users.items()} == {i: _expected(i) for i in salts}
        users[3].email = "new@x.org"      # an encrypted row
        users[200].email = "NEW2@x.org"   # a plaintext row
        s.add(User(id=N + 1, email="fresh@x.org"))
        s.commit()
    rows = _rows(engine)
    for i in (3, 200, N + 1):
        assert rows[i][1].startswith("vk1.")  # the application writes ciphertext only
    with Session(engine) as s:
        assert s.scalars(select(User).where(User.email_bi == "new2@X.org")).one().id == 200
    # A plaintext forged to look like one of the keyset's values fails loudly.
    forged = armor(bytes([1]) + ks.primary_id.to_bytes(4, "big") + bytes(40))
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET email = :e WHERE id = 5"), {"e": forged})
    with Session(engine) as s, pytest.raises(DecryptionError):
        s.get(User, 5)


class _Stop(Exception):
    pass


def _stop_after(last: Any, limit: int) -> None:
    if last >= limit:
        raise _Stop


def test_cli_encrypt_and_decrypt_column_with_json(setup: Any) -> None:
    env, ks, engine = setup["env"], setup["ks"], setup["engine"]

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["field", *args], env=env, catch_exceptions=False)

    r = run("encrypt-column", "--table", "users", "--column", "email", "--pk", "id",
            "--index-column", "email_bi", "--index-normalizer", "strip",
            "--index-normalizer", "casefold", "--batch", "64", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["reencrypted"] == N - N // 50 and report["failed"] == []
    _assert_all_encrypted(engine, ks)
    r = run("encrypt-column", "--table", "users", "--column", "email", "--pk", "id",
            "--start-after", "200")
    assert r.exit_code == 0 and "encrypted 0, already encrypted 40" in r.output
    new = json.loads(run("keyset", "rotate", "--stage", "--json").output)["keys"][-1]["id"]
    promoted = json.loads(run("keyset", "promote", new, "--json").output)
    assert promoted["primary"] == new
    r = run("decrypt-column", "--table", "users", "--column", "email", "--pk", "id", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["reencrypted"] == N - N // 50
    old = next(k["id"] for k in promoted["keys"] if k["id"] != new)
    retired = run("keyset", "retire", old, "--column", "users.email", "--json")
    assert retired.exit_code == 0, retired.output
    assert {k["id"]: k["state"] for k in json.loads(retired.output)["keys"]}[old] == "retired"
    r = run("encrypt-column", "--table", "users", "--column", "missing", "--pk", "id")
    assert r.exit_code == 3 and "no such column" in r.output


def test_a_job_whose_passes_run_out_says_it_is_incomplete() -> None:
    """The application kept winning the optimistic update: the report must not say done."""
    from vaultkit.fields.reencrypt import ReencryptReport, run_batches

    def always_losing(last: object, report: ReencryptReport) -> tuple[list[tuple[int]], int]:
        if last is not None:
            return [], 0
        report.conflicts += 1  # the row changed under us again
        return [(1,)], 1

    report = run_batches(always_losing, max_passes=3)
    assert report.passes == 3 and report.complete is False
    assert report.as_dict()["complete"] is False

    def clean(last: object, report: ReencryptReport) -> tuple[list[tuple[int]], int]:
        return ([(1,)], 1) if last is None else ([], 0)

    assert run_batches(clean, max_passes=3).complete is True


def test_start_after_is_typed_as_the_primary_key(setup: Any) -> None:
    """--start-after arrives as text: "0009" on a text key stays text, "x" on an int key fails."""
    ks, engine = setup["ks"], setup["engine"]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (code TEXT PRIMARY KEY, row_salt CHAR(32) NOT NULL, "
                          "body TEXT)"))
        conn.execute(text("INSERT INTO notes VALUES (:c, :s, :b)"),
                      [{"c": f"{i:04d}", "s": uuid.uuid4().hex, "b": f"note {i}"}
                       for i in range(1, 21)])
    cipher = FieldCipher(ks)
    r = CliRunner().invoke(cli, ["field", "encrypt-column", "--table", "notes", "--column",
                                 "body", "--pk", "code", "--start-after", "0009", "--json"],
                           env=setup["env"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    # as text, "0010".."0020" follow "0009"; compared as the integer 9, SQLite would put
    # every text key after it and encrypt all 20
    assert json.loads(r.output)["reencrypted"] == 11
    with pytest.raises(ConfigError, match="integer"):
        encrypt_column(engine, table="users", column="email", pk="id", cipher=cipher,
                       start_after="abc")
