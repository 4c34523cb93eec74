"""Migration readers: values written by the real Fernet and sqlalchemy-utils, read and
re-encrypted into vk1 (SQLite)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, create_engine, select
from sqlalchemy_utils import StringEncryptedType
from sqlalchemy_utils.types.encrypted.encrypted_type import AesEngine, AesGcmEngine

from vaultkit.errors import ConfigError, DecryptionError
from vaultkit.fields import FieldCipher, FieldContext, Keyset, key_id_of
from vaultkit.fields.migrate import FernetReader, SqlalchemyUtilsReader, reader_for
from vaultkit.fields.reencrypt import reencrypt_column
from vaultkit.secret import Secret

PASSPHRASE = "correct horse battery staple"


def test_fernet_reader_reads_real_tokens_with_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = Fernet(old).encrypt(b"hello")
    reader = FernetReader([Secret(new), old])
    assert reader(token) == b"hello"
    assert reader(token.decode()) == b"hello"
    with pytest.raises(DecryptionError):
        FernetReader([new])(token)
    tampered = bytearray(token)
    tampered[30] ^= 1
    with pytest.raises(DecryptionError):
        reader(bytes(tampered))
    with pytest.raises(ConfigError):
        FernetReader([b"short"])


@pytest.mark.parametrize(("engine", "padding", "name"), [
    (AesGcmEngine, None, "aes-gcm"), (AesEngine, "naive", "aes"), (AesEngine, "pkcs5", "aes")])
def test_sqlalchemy_utils_values_read_and_migrate(engine: Any, padding: str | None, name: str,
                                                  tmp_path: Any) -> None:
    md = MetaData()
    kwargs = {"padding": padding} if padding else {}
    legacy = Table("legacy_users", md,
                   Column("id", Integer, primary_key=True),
                   Column("row_salt", Uuid, nullable=False, default=uuid.uuid4),
                   Column("email", StringEncryptedType(String, PASSPHRASE, engine, **kwargs)))
    eng = create_engine(f"sqlite:///{tmp_path}/legacy.sqlite")
    md.create_all(eng)
    emails = [f"user{i}@example.com" for i in range(25)] + ["ünï@x"]
    with eng.begin() as conn:
        conn.execute(legacy.insert(), [{"email": e} for e in emails])
        stored = [r[0] for r in conn.exec_driver_sql("SELECT email FROM legacy_users ORDER BY id")]
    reader = SqlalchemyUtilsReader(PASSPHRASE, engine=name, padding=padding or "naive")
    assert [reader(v).decode() for v in stored] == emails
    if name == "aes-gcm":
        with pytest.raises(DecryptionError):
            SqlalchemyUtilsReader("wrong", engine=name)(stored[0])
    else:
        # AesEngine has a fixed IV: equal plaintexts give equal ciphertexts (the weakness).
        with eng.begin() as conn:
            conn.execute(legacy.insert(), [{"email": emails[0]}])
            again = conn.exec_driver_sql("SELECT email FROM legacy_users WHERE id = 27").scalar()
        assert again == stored[0]

    ks = Keyset.create("migrate", kek="memory://fields-migrate")
    cipher = FieldCipher(ks)
    report = reencrypt_column(eng, table="legacy_users", column="email", pk="id",
                              cipher=cipher, legacy=reader, batch=10)
    assert not report.failed
    with eng.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, row_salt, email FROM legacy_users ORDER BY id"
                                    ).all()
    for (_, salt, value), expected in zip(rows, emails, strict=False):
        assert isinstance(value, str) and value.startswith("vk1.")  # text column: armored
        assert key_id_of(value) == ks.primary_id
        ctx = FieldContext(table="legacy_users", column="email", row=salt)
        assert cipher.decrypt(value, context=ctx, as_str=True) == expected
    rerun = reencrypt_column(eng, table="legacy_users", column="email", pk="id",
                             cipher=cipher, legacy=reader)
    assert rerun.reencrypted == 0 and rerun.skipped == len(rows)
    with eng.connect() as conn:
        assert conn.execute(select(legacy.c.id)).all()


def test_unreadable_rows_are_reported_not_fatal(tmp_path: Any) -> None:
    eng = create_engine(f"sqlite:///{tmp_path}/x.sqlite")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, row_salt TEXT, c BLOB)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'a', x'00112233'), (2, 'b', NULL)")
    ks = Keyset.create("migrate2", kek="memory://fields-migrate2")
    report = reencrypt_column(eng, table="t", column="c", pk="id", cipher=FieldCipher(ks))
    assert report.failed == [1] and report.skipped == 1


def test_reader_for_names() -> None:
    assert isinstance(reader_for("fernet", Fernet.generate_key()), FernetReader)
    assert reader_for("sqlalchemy-utils-aes", "k").engine == "aes"  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        reader_for("rot13", "k")
