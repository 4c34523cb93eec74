"""SQLAlchemy column types for encrypted fields and blind indexes (ORM, SQLAlchemy 2).

Example (see ``examples/encrypted_fields.py``)::

    import uuid
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
    from vaultkit.fields import BlindIndex, FieldCipher, Keyset
    from vaultkit.fields.sqlalchemy import (EncryptedString, blind_index_column,
                                            row_salt_column)
    ks = Keyset.create("sa-doc", kek="memory://sa-doc")
    cipher = FieldCipher(ks)
    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        row_salt: Mapped[uuid.UUID] = row_salt_column()
        email: Mapped[str] = mapped_column(EncryptedString(cipher))
        email_bi: Mapped[bytes] = blind_index_column(
            "email", BlindIndex(ks, column="users.email", normalizers=("strip", "casefold")))

Then ``select(User).where(User.email_bi == "A@B.C")`` finds the row: the index
column's type turns the ``str`` probe into its blind index. ``User.email == ...``
raises :class:`~vaultkit.errors.ConfigError` (ciphertexts never compare equal).

How values get their context (``docs/fields.md``, "Row identity")
--------------------------------------------------------------------
The context of a value is ``{"table": <Table.fullname>, "column": <column name>,
"row": <row salt>}``. An autoincrement key does not exist before INSERT, so the
row identity is a **row salt**: a client-generated UUID column (``row_salt_column``)
filled in before the INSERT and never changed afterwards. The ORM does the rest
through mapper events registered when a mapper with encrypted columns is configured:

* ``before_insert``/``before_update``: fill the row salt, encrypt the changed plaintext
  attributes into :class:`Sealed` values (what the column type binds), compute blind
  indexes from the plaintext; ``after_insert``/``after_update`` put the plaintext back;
* ``load``/``refresh``: the column type returns :class:`Sealed`; the event decrypts it
  with the row's context and sets the plaintext as the committed value.

Core statements (``insert()``, ``update()``, ``session.execute(update(...))``) bypass
the ORM events: binding a plain value to an encrypted column raises ConfigError;
use :func:`seal` to encrypt for a row explicitly. Column-only queries
(``select(User.email)``) return :class:`Sealed` values; load entities instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Text, Uuid, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import MappedColumn, Mapper, attributes, mapped_column
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..errors import ConfigError
from .blind_index import BlindIndex
from .cipher import FieldCipher
from .format import FieldContext
from .rows import is_sealed, json_plain, open_plain, row_context
from .rows import row_id as _row_id

ROW_SALT_INFO = "vaultkit_row_salt"
BLIND_INDEX_INFO = "vaultkit_blind_index_source"


class Sealed:
    """A ciphertext bound to its row, as stored in the column (not yet decrypted)."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes | str) -> None:
        self.blob = blob

    def __repr__(self) -> str:
        return f"Sealed(<{len(self.blob)} bytes of ciphertext>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)


_ALLOWED_OPS = {operators.is_, operators.is_not}


class _EncryptedType(TypeDecorator[Any]):
    impl = LargeBinary
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator[Any]):
        """Refuse comparisons: ciphertexts are randomized, so ``==`` could never match."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _ALLOWED_OPS:
                return super().operate(op, *other, **kwargs)
            raise ConfigError(
                "an encrypted column cannot be compared or sorted in SQL (its ciphertexts are "
                "randomized); query its blind-index column instead")

        def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
            return self.operate(op, other, **kwargs)

    def __init__(self, cipher: FieldCipher, *, armored: bool = False,
                 accept_plaintext: bool = False, write_plaintext: bool = False) -> None:
        super().__init__()
        if not isinstance(cipher, FieldCipher):
            # sqlalchemy-utils#724: a KMS ARN or passphrase silently became a key there.
            raise ConfigError("encrypted column types need a FieldCipher (not a key or "
                              "passphrase)")
        if write_plaintext and not accept_plaintext:
            raise ConfigError("write_plaintext=True is for leaving vaultkit; it needs "
                              "accept_plaintext=True")
        self.cipher = cipher
        self.armored = armored
        #: Dual read (during ``encrypt_column``/``decrypt_column``): a stored value that is
        #: not a vk1 value of this keyset is plaintext, returned as is.
        self.accept_plaintext = accept_plaintext
        #: Write plaintext (during ``decrypt_column``, when leaving vaultkit).
        self.write_plaintext = write_plaintext

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if self.armored else LargeBinary())

    # conversions between the Python value and the plaintext bytes
    def to_plain(self, value: Any) -> bytes:
        raise NotImplementedError

    def from_plain(self, data: bytes) -> Any:
        raise NotImplementedError

    def seal(self, value: Any, context: FieldContext) -> Sealed:
        plain = self.to_plain(value)
        if self.write_plaintext:
            return Sealed(open_plain(plain, _decode) if self.armored else plain)
        return Sealed(self.cipher.encrypt(plain, context=context, armored=self.armored))

    def open(self, sealed: Sealed, context: FieldContext) -> Any:
        blob = sealed.blob
        if self.accept_plaintext and not is_sealed(blob, self.cipher):
            stored = blob.encode("utf-8") if isinstance(blob, str) else blob
            return open_plain(stored, self.from_plain)
        return self._opened(self.cipher, blob, context)

    def _opened(self, cipher: FieldCipher, blob: bytes | str, context: FieldContext) -> Any:
        return open_plain(cipher.decrypt(blob, context=context), self.from_plain)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.blob
        raise ConfigError(
            "encrypted columns are written through the ORM (which binds the row's context) "
            "or with vaultkit.fields.sqlalchemy.seal(); a plain value was bound")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            return Sealed(value)
        return Sealed(bytes(value))  # memoryview (psycopg bytea)


def _decode(data: bytes) -> str:
    return data.decode("utf-8")


class EncryptedString(_EncryptedType):
    """A ``str`` column stored encrypted (``bytea``/``BLOB``; ``armored=True``: text)."""

    cache_ok = True

    def to_plain(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise ConfigError("EncryptedString holds str values")
        return value.encode("utf-8")

    def from_plain(self, data: bytes) -> Any:
        return data.decode("utf-8")

    def _opened(self, cipher: FieldCipher, blob: bytes | str, context: FieldContext) -> Any:
        # The cipher decodes UTF-8 itself, outside any handler (one call less per value).
        return cipher.decrypt(blob, context=context, as_str=True)


class EncryptedBytes(_EncryptedType):
    """A ``bytes`` column stored encrypted."""

    cache_ok = True

    def to_plain(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ConfigError("EncryptedBytes holds bytes values")
        return bytes(value)

    def from_plain(self, data: bytes) -> Any:
        return data


class EncryptedJSON(_EncryptedType):
    """A JSON document stored encrypted. Reassign the attribute to change it (in-place
    mutation of a dict is not tracked). ``None`` is SQL NULL, not an encrypted ``null``."""

    cache_ok = True

    def to_plain(self, value: Any) -> bytes:
        return json_plain(value)

    def from_plain(self, data: bytes) -> Any:
        return json.loads(data)


class BlindIndexType(TypeDecorator[bytes]):
    """The type of a blind-index column: binding a ``str`` computes its index.

    So ``User.email_bi == "a@b.c"`` compares against the index of ``"a@b.c"``;
    ``bytes`` are taken as an index already computed.
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(self, index: BlindIndex) -> None:
        super().__init__(length=index.length)
        self.index = index

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return self.index.compute(value)
        raise ConfigError("a blind-index column binds str (a plaintext to index) or bytes")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else bytes(value)


def row_salt_column(name: str | None = None, **kw: Any) -> MappedColumn[Any]:
    """A client-generated UUID that identifies the row in every encrypted value's context."""
    kw.setdefault("nullable", False)
    kw.setdefault("unique", True)
    info = dict(kw.pop("info", {}) or {})
    info[ROW_SALT_INFO] = True
    args: tuple[Any, ...] = (name,) if name else ()
    salt_type: Any = Uuid(as_uuid=True)
    return mapped_column(*args, salt_type, default=uuid.uuid4, info=info, **kw)


def blind_index_column(source: str, index: BlindIndex, name: str | None = None,
                       **kw: Any) -> MappedColumn[Any]:
    """A blind-index column computed from attribute ``source`` on every insert/update.

    For index key rotation declare one column per version (``email_bi_v1``,
    ``email_bi_v2``): both are written, and queries move to the new one after backfill.
    """
    kw.setdefault("index", True)
    info = dict(kw.pop("info", {}) or {})
    info[BLIND_INDEX_INFO] = source
    args: tuple[Any, ...] = (name,) if name else ()
    return mapped_column(*args, BlindIndexType(index), info=info, **kw)


def seal(column: Any, value: Any, row_salt: Any) -> Sealed:
    """Encrypt ``value`` for ``column`` (e.g. ``User.__table__.c.email``) in row ``row_salt``.

    For Core statements, which bypass the ORM events.
    """
    col: Any = getattr(column, "expression", column)
    typ = col.type
    if not isinstance(typ, _EncryptedType):
        raise ConfigError("seal() needs an encrypted column")
    return typ.seal(value, row_context(col.table.fullname, col.name, row_salt))


# --- ORM wiring ----------------------------------------------------------------------------


@dataclass
class _Plan:
    salt_key: str
    encrypted: list[tuple[str, str, str, _EncryptedType]] = field(default_factory=list)
    indexes: list[tuple[str, str, BlindIndexType]] = field(default_factory=list)


def _plan_for(mapper: Mapper[Any]) -> _Plan | None:
    encrypted = []
    indexes = []
    salt_key = None
    for prop in mapper.column_attrs:
        col: Any = prop.columns[0]
        if isinstance(col.type, _EncryptedType):
            encrypted.append((prop.key, col.table.fullname, col.name, col.type))
        elif isinstance(col.type, BlindIndexType):
            source = col.info.get(BLIND_INDEX_INFO)
            if not source:
                raise ConfigError(f"blind-index column {col.name} has no source attribute")
            indexes.append((prop.key, str(source), col.type))
        if col.info.get(ROW_SALT_INFO):
            salt_key = prop.key
    if not encrypted and not indexes:
        return None
    if salt_key is None:
        raise ConfigError(f"{mapper.class_.__name__} has encrypted columns but no "
                          "row_salt_column(); the row identity is needed for the context")
    return _Plan(salt_key, encrypted, indexes)


def _changed(target: Any, key: str) -> bool:
    return bool(attributes.get_history(target, key).has_changes())


def _seal_target(plan: _Plan, target: Any, *, insert: bool) -> None:
    state = attributes.instance_state(target)
    d = target.__dict__
    todo = [(key, table, column, typ) for key, table, column, typ in plan.encrypted
            if key in d and not isinstance(d[key], Sealed)
            and (insert or _changed(target, key))]
    if not insert and _changed(target, plan.salt_key):
        raise ConfigError("the row salt of an existing row must never change "
                          "(every encrypted value of the row is bound to it)")
    if not todo and not insert:
        return
    # On UPDATE the salt may be expired; reading it loads it (the row exists).
    salt = d.get(plan.salt_key) if insert else getattr(target, plan.salt_key)
    if salt is None:
        if not insert:
            raise ConfigError("row salt is missing on an existing row")
        salt = uuid.uuid4()
        setattr(target, plan.salt_key, salt)
    row = _row_id(salt)
    plain: dict[str, Any] = {}
    for key, table, column, typ in todo:
        value = d[key]
        plain[key] = value
        if value is None:
            continue
        setattr(target, key, typ.seal(value, row_context(table, column, row)))
    for key, source, itype in plan.indexes:
        if source in plain:
            value = plain[source]
        elif insert and source in d and not isinstance(d[source], Sealed):
            value = d[source]
        else:
            continue
        if value is None:
            setattr(target, key, None)
        elif isinstance(value, (str, bytes)):
            setattr(target, key, itype.index.compute(value))
        else:
            raise ConfigError("blind indexes cover str and bytes attributes")
    state.info["vaultkit_plain"] = plain


def _restore(target: Any) -> None:
    state = attributes.instance_state(target)
    plain = state.info.pop("vaultkit_plain", None) or {}
    for key, value in plain.items():
        if value is not None:
            attributes.set_committed_value(target, key, value)


def _open_target(plan: _Plan, target: Any, keys: Any = None) -> None:
    d = target.__dict__
    salt = d.get(plan.salt_key)
    if salt is None:
        return  # salt not loaded (deferred): values stay Sealed
    row = _row_id(salt)
    for key, table, column, typ in plan.encrypted:
        if keys is not None and key not in keys:
            continue
        value = d.get(key)
        if isinstance(value, Sealed):
            plain = typ.open(value, row_context(table, column, row))
            attributes.set_committed_value(target, key, plain)


def _install(mapper: Mapper[Any], class_: type) -> None:
    plan = _plan_for(mapper)
    if plan is None:
        return

    def before_insert(_m: Any, _c: Any, target: Any) -> None:
        _seal_target(plan, target, insert=True)

    def before_update(_m: Any, _c: Any, target: Any) -> None:
        _seal_target(plan, target, insert=False)

    def after_write(_m: Any, _c: Any, target: Any) -> None:
        _restore(target)

    def on_load(target: Any, _ctx: Any) -> None:
        _open_target(plan, target)

    def on_refresh(target: Any, _ctx: Any, attrs: Any) -> None:
        _open_target(plan, target, attrs)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_insert", before_insert), ("before_update", before_update),
        ("after_insert", after_write), ("after_update", after_write),
        ("load", on_load), ("refresh", on_refresh), ("refresh_flush", on_refresh),
    ]
    for name, fn in listeners:
        event.listen(mapper, name, fn)


event.listen(Mapper, "mapper_configured", _install)


__all__ = [
    "BlindIndexType", "EncryptedBytes", "EncryptedJSON", "EncryptedString", "Sealed",
    "blind_index_column", "row_context", "row_salt_column", "seal",
]
