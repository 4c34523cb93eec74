"""Encrypted columns with SQLAlchemy: an encrypted email with a blind index, an
encrypted JSON profile, a key rotation, and a live plaintext column encrypted in place.

    python examples/encrypted_fields.py                      # SQLite in a temp dir
    python examples/encrypted_fields.py postgresql+psycopg://user@host/db

The keyset is wrapped by ``memory://`` here so the example runs anywhere; in a
service use ``awskms://...``, ``transit://...`` or ``local://...`` and store the
keyset with ``vaultkit field keyset create --keyset file://... --kek ...``.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from vaultkit.fields import BlindIndex, FieldCipher, Keyset, key_id_of, plan_index_length
from vaultkit.fields.column import encrypt_column
from vaultkit.fields.reencrypt import reencrypt_column
from vaultkit.fields.sqlalchemy import (
    EncryptedJSON,
    EncryptedString,
    blind_index_column,
    row_salt_column,
)

keyset = Keyset.create("example-users", kek="memory://example-kek")
cipher = FieldCipher(keyset)
# 10 million users, at most one accidental match per 10,000 lookups.
plan = plan_index_length(rows=10_000_000, false_positive_rate=1e-4)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "example_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    row_salt: Mapped[uuid.UUID] = row_salt_column()  # row identity, bound into every value
    email: Mapped[str] = mapped_column(EncryptedString(cipher))
    email_bi: Mapped[bytes] = blind_index_column(
        "email", BlindIndex(keyset, column="example_users.email", length=plan.length,
                            normalizers=("strip", "casefold")))
    profile: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON(cipher), nullable=True)


class Customer(Base):
    """A table whose email column still holds plaintext: during the migration the model
    uses the dual-read type (reads plaintext and ciphertext, writes ciphertext)."""

    __tablename__ = "example_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    row_salt: Mapped[uuid.UUID] = row_salt_column()
    email: Mapped[str] = mapped_column(EncryptedString(cipher, armored=True,
                                                       accept_plaintext=True))
    email_bi: Mapped[bytes | None] = blind_index_column(
        "email", BlindIndex(keyset, column="example_customers.email",
                            normalizers=("strip", "casefold")))


def encrypt_live_column(engine: Any) -> None:
    """The runbook of docs/fields.md, in miniature."""
    with engine.begin() as conn:  # what the table looks like before: plaintext
        conn.execute(text("INSERT INTO example_customers (id, row_salt, email) "
                          "VALUES (:i, :s, :e)"),
                     [{"i": i, "s": uuid.uuid4().hex, "e": f"customer{i}@example.com"}
                      for i in range(1, 6)])
    with Session(engine) as session:  # the dual-read type already reads it
        print("before:", [c.email for c in session.scalars(select(Customer).order_by(
            Customer.id))][:2], "...")
        session.add(Customer(id=6, email="new@example.com"))  # and writes ciphertext
        session.commit()
    index = BlindIndex(keyset, column="example_customers.email",
                       normalizers=("strip", "casefold"))
    report = encrypt_column(engine, table="example_customers", column="email", pk="id",
                            cipher=cipher, index_column="email_bi", index=index, batch=2)
    print(f"encrypt-column: {report.reencrypted} encrypted, {report.skipped} already "
          f"encrypted, {len(report.failed)} failed")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT email FROM example_customers")).scalars().all()
    print("every value is ciphertext now:", all(v.startswith("vk1.") for v in stored))
    with Session(engine) as session:
        found = session.scalars(select(Customer).where(
            Customer.email_bi == "Customer3@Example.com ")).one()
        print("found by blind index:", found.email)


def main(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([
            User(email="Ada@Example.com", profile={"plan": "pro", "tags": ["math"]}),
            User(email="grace@example.com", profile={"plan": "free"}),
        ])
        session.commit()

        ada = session.scalars(select(User).where(User.email_bi == "  ada@example.COM")).one()
        print(f"found by blind index ({plan.length}-byte index): {ada.email} {ada.profile}")

        raw = session.execute(text("SELECT email FROM example_users ORDER BY id")).scalars()
        print("stored ciphertexts:", [bytes(r)[:12].hex() + "..." for r in raw])

        old = keyset.primary_id
        keyset.rotate()
        report = reencrypt_column(engine, table="example_users", column="email", pk="id",
                                  cipher=cipher)
        raw = session.execute(text("SELECT email FROM example_users")).scalars()
        print(f"rotated {old:08x} -> {keyset.primary_id:08x}; re-encrypted "
              f"{report.reencrypted} rows; key ids now: "
              f"{sorted({f'{key_id_of(bytes(r)):08x}' for r in raw})}")
        session.expire_all()
        print("still readable:", sorted(u.email for u in session.scalars(select(User))))
    encrypt_live_column(engine)
    Base.metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(f"sqlite:///{Path(tmp) / 'example.sqlite'}")
