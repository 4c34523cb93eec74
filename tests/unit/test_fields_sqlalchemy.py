"""SQLAlchemy types on SQLite (the suite class also runs on PostgreSQL, see integration)."""

# ruff: noqa: S608 - the SQL below interpolates fixed test table/column names only
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, configure_mappers, mapped_column

from vaultkit.errors import ConfigError, DecryptionError
from vaultkit.fields import BlindIndex, FieldCipher, Keyset, key_id_of
from vaultkit.fields.sqlalchemy import (
    EncryptedBytes,
    EncryptedJSON,
    EncryptedString,
    Sealed,
    blind_index_column,
    row_salt_column,
    seal,
)

KS = Keyset.create("sa-tests", kek="memory://fields-sa-tests")
CIPHER = FieldCipher(KS)
KS.rotate_index_key()  # index key v2 exists: v1 and v2 columns are dual-written


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "vk_fields_people"
    id: Mapped[int] = mapped_column(primary_key=True)
    row_salt: Mapped[uuid.UUID] = row_salt_column()
    name: Mapped[str]
    email: Mapped[str] = mapped_column(EncryptedString(CIPHER))
    email_bi_v1: Mapped[bytes] = blind_index_column(
        "email", BlindIndex(KS, column="people.email", version=1, normalizers=("strip",
                                                                                 "casefold")))
    email_bi_v2: Mapped[bytes] = blind_index_column(
        "email", BlindIndex(KS, column="people.email", version=2, normalizers=("strip",
                                                                                 "casefold")))
    phone: Mapped[str | None] = mapped_column(EncryptedString(CIPHER, armored=True),
                                              nullable=True)
    avatar: Mapped[bytes | None] = mapped_column(EncryptedBytes(CIPHER), nullable=True)
    profile: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON(CIPHER), nullable=True)


class Note(Base):
    __tablename__ = "vk_fields_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    row_salt: Mapped[uuid.UUID] = row_salt_column()
    person_id: Mapped[int] = mapped_column(ForeignKey("vk_fields_people.id"))
    body: Mapped[str] = mapped_column(EncryptedString(CIPHER))


class SqlaSuite:
    """Runs against the ``engine`` fixture (SQLite here, PostgreSQL in integration)."""

    @pytest.fixture
    def session(self, engine: Engine) -> Iterator[Session]:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            yield s
        Base.metadata.drop_all(engine)

    def _raw(self, session: Session, column: str) -> list[Any]:
        return list(session.execute(
            text(f"SELECT {column} FROM vk_fields_people ORDER BY id")).scalars())

    def test_round_trip_and_blind_index_query(self, session: Session) -> None:
        session.add_all([
            Person(name="a", email="Alice@Example.com", phone="+1 555", avatar=b"\x00\x01",
                   profile={"tags": ["x"], "n": 1}),
            Person(name="b", email="bob@example.com"),
        ])
        session.commit()
        found = session.scalars(select(Person).where(Person.email_bi_v2 == " alice@example.COM")
                                ).one()
        assert found.name == "a" and found.email == "Alice@Example.com"
        assert found.phone == "+1 555" and found.avatar == b"\x00\x01"
        assert found.profile == {"tags": ["x"], "n": 1}
        assert session.scalars(select(Person).where(Person.email_bi_v1 == "bob@example.com")
                               ).one().name == "b"
        assert session.scalars(select(Person).where(Person.email_bi_v2 == "nobody@x")
                               ).all() == []
        raw = self._raw(session, "email")
        assert all(key_id_of(bytes(r)) == KS.primary_id for r in raw)
        assert all(b"lice" not in bytes(r) for r in raw)
        phones = self._raw(session, "phone")
        assert phones[0].startswith("vk1.") and phones[1] is None

    def test_values_after_commit_and_expiry(self, session: Session) -> None:
        p = Person(name="a", email="a@x")
        session.add(p)
        session.flush()
        assert p.email == "a@x"  # the plaintext is put back after the flush
        session.commit()
        assert p.email == "a@x"  # expired, reloaded, decrypted
        session.expire_all()
        assert session.get(Person, p.id).email == "a@x"  # type: ignore[union-attr]

    def test_update_reencrypts_only_changed_columns(self, session: Session) -> None:
        p = Person(name="a", email="a@x", phone="1")
        session.add(p)
        session.commit()
        before_email, before_phone = self._raw(session, "email")[0], self._raw(session, "phone")[0]
        p.name = "renamed"
        session.commit()
        assert self._raw(session, "email")[0] == before_email
        p.email = "new@x"
        session.commit()
        assert self._raw(session, "email")[0] != before_email
        assert self._raw(session, "phone")[0] == before_phone
        assert session.scalars(select(Person).where(Person.email_bi_v2 == "NEW@x")).one() is p
        assert session.scalars(select(Person).where(Person.email_bi_v2 == "a@x")).all() == []

    def test_moving_ciphertext_between_rows_or_columns_is_detected(self, session: Session
                                                                  ) -> None:
        session.add_all([Person(name="a", email="a@x", phone="p"),
                         Person(name="b", email="b@x")])
        session.commit()
        a_id, b_id = [p.id for p in session.scalars(select(Person).order_by(Person.id))]
        # An attacker with write access copies a's email ciphertext into b's row.
        session.execute(text(
            "UPDATE vk_fields_people SET email = (SELECT email FROM vk_fields_people "
            "WHERE id = :a) WHERE id = :b"), {"a": a_id, "b": b_id})
        session.commit()
        session.expire_all()
        with pytest.raises(DecryptionError):
            session.get(Person, b_id)
        session.rollback()
        session.expunge_all()
        # ... or a's phone (armored text) into a's avatar column.
        session.execute(text("UPDATE vk_fields_people SET phone = :p WHERE id = :a"),
                        {"p": CIPHER.encrypt(b"x", context={"table": "vk_fields_people",
                                                            "column": "email", "row": "0"},
                                             armored=True), "a": a_id})
        session.commit()
        session.expunge_all()
        with pytest.raises(DecryptionError):
            session.get(Person, a_id)

    def test_equality_on_ciphertext_is_refused(self, session: Session) -> None:
        with pytest.raises(ConfigError, match="blind-index"):
            select(Person).where(Person.email == "a@x")
        with pytest.raises(ConfigError):
            select(Person).where(Person.email.in_(["a@x"]))
        with pytest.raises(ConfigError):
            select(Person).order_by(Person.email.desc())
        assert session.scalars(select(Person).where(Person.phone.is_(None))).all() == []

    def test_core_statements_need_seal(self, session: Session) -> None:
        with pytest.raises(Exception) as info:
            session.execute(insert(Person).values(row_salt=uuid.uuid4(), name="c", email="c@x",
                                                  email_bi_v1=b"", email_bi_v2=b""))
        assert isinstance(info.value, ConfigError) or isinstance(
            getattr(info.value, "orig", None), ConfigError)
        session.rollback()
        salt = uuid.uuid4()
        col = Person.__table__.c.email
        session.execute(insert(Person).values(
            row_salt=salt, name="c", email=seal(col, "c@x", salt), email_bi_v1=b"",
            email_bi_v2="c@x"))
        session.commit()
        got = session.scalars(select(Person).where(Person.email_bi_v2 == "c@x")).one()
        assert got.email == "c@x"
        assert isinstance(session.scalars(select(Person.email)).one(), Sealed)

    def test_related_rows_and_many(self, session: Session) -> None:
        people = [Person(name=str(i), email=f"{i}@x") for i in range(40)]
        session.add_all(people)
        session.flush()
        session.add_all([Note(person_id=p.id, body=f"note {p.name}") for p in people])
        session.commit()
        session.expunge_all()
        notes = session.scalars(select(Note).order_by(Note.id)).all()
        assert [n.body for n in notes] == [f"note {i}" for i in range(40)]
        assert len({n.row_salt for n in notes}) == 40

    def test_row_salt_must_not_change(self, session: Session) -> None:
        p = Person(name="a", email="a@x")
        session.add(p)
        session.commit()
        p.row_salt = uuid.uuid4()
        p.email = "b@x"
        with pytest.raises(ConfigError, match="row salt"):
            session.commit()

    def test_rotation_reads_old_rows(self, session: Session) -> None:
        local_ks = KS
        session.add(Person(name="old", email="old@x"))
        session.commit()
        old_primary = local_ks.primary_id
        local_ks.rotate()
        session.add(Person(name="new", email="new@x"))
        session.commit()
        session.expunge_all()
        assert sorted(p.email for p in session.scalars(select(Person))) == ["new@x", "old@x"]
        assert {key_id_of(bytes(r)) for r in self._raw(session, "email")} == {
            old_primary, local_ks.primary_id}

    def test_no_plaintext_in_logs_or_database(self, session: Session, engine: Engine,
                                              leak_canary: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
        import logging

        caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
        engine.echo = True
        try:
            email = leak_canary.new() + "@x"
            session.add(Person(name="a", email=email, profile={"secret": leak_canary.new()}))
            session.commit()
            session.expunge_all()
            p = session.scalars(select(Person)).one()
            leak_canary.watch(p.row_salt, Person.__table__.c.email.type)
            assert p.email == email
        finally:
            engine.echo = False
        dumped = " ".join(repr(r) for r in session.execute(
            text("SELECT * FROM vk_fields_people")).all())
        leak_canary.watch_text(dumped, "database dump")


class TestSqlite(SqlaSuite):
    @pytest.fixture
    def engine(self, tmp_path: Any) -> Iterator[Engine]:
        eng = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
        yield eng
        eng.dispose()


def test_a_mapper_without_row_salt_is_refused() -> None:
    class B2(DeclarativeBase):
        pass

    class Bad(B2):
        __tablename__ = f"bad_{os.urandom(3).hex()}"
        id: Mapped[int] = mapped_column(primary_key=True)
        secret: Mapped[str] = mapped_column(EncryptedString(CIPHER))

    with pytest.raises(ConfigError, match="row_salt_column"):
        configure_mappers()
    B2.registry.dispose()


def test_row_context_is_the_canonical_context() -> None:
    from vaultkit.fields import FieldContext
    from vaultkit.fields.sqlalchemy import row_context

    salt = uuid.uuid4()
    fast = row_context("schema.users", "e-mail", salt)
    assert fast == FieldContext(table="schema.users", column="e-mail", row=salt.hex)
    assert fast.as_dict() == {"table": "schema.users", "column": "e-mail", "row": salt.hex}
    with pytest.raises(ConfigError):
        row_context("t", "c", "a\x00b")


def test_a_key_instead_of_a_cipher_is_refused() -> None:
    with pytest.raises(ConfigError, match="FieldCipher"):
        EncryptedString(b"0" * 32)  # type: ignore[arg-type]
