"""Quickstart step: field encryption on SQLite with a keyset wrapped by a memory KEK.

(No ``from __future__ import annotations``: the models are declared inside ``step`` and
SQLAlchemy must see their ``Mapped[...]`` annotations as real objects.)
"""


import pathlib
import uuid
from collections.abc import Callable


def step(workdir: pathlib.Path, say: Callable[[str], None]) -> None:
    from sqlalchemy import create_engine, select, text
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    from vaultkit.fields import BlindIndex, FieldCipher, Keyset, key_id_of
    from vaultkit.fields.sqlalchemy import EncryptedString, blind_index_column, row_salt_column

    keyset = Keyset.create("quickstart", kek="memory://quickstart")
    keyset.save(f"file://{workdir / 'fields-keyset.json'}")
    cipher = FieldCipher(keyset)
    say(f"keyset saved to {workdir / 'fields-keyset.json'} (wrapped keys only), "
        f"primary key {keyset.primary_id:08x}")

    class Base(DeclarativeBase):
        pass

    class Customer(Base):
        __tablename__ = "customers"
        id: Mapped[int] = mapped_column(primary_key=True)
        row_salt: Mapped[uuid.UUID] = row_salt_column()
        email: Mapped[str] = mapped_column(EncryptedString(cipher))
        email_bi: Mapped[bytes] = blind_index_column(
            "email", BlindIndex(keyset, column="customers.email", normalizers=("casefold",)))

    engine = create_engine(f"sqlite:///{workdir / 'fields.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Customer(email="demo@example.com"))
        session.commit()
        blob = bytes(session.execute(text("SELECT email FROM customers")).scalar_one())
        say(f"the database holds {len(blob)} bytes of ciphertext under key "
            f"{key_id_of(blob):08x} (45 bytes of overhead)")
        found = session.scalars(select(Customer).where(Customer.email_bi == "DEMO@example.com"))
        say(f"looked up by blind index: {found.one().email}")
    engine.dispose()
    Base.registry.dispose()
