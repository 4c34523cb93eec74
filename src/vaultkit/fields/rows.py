"""Row identity in a field's context, shared by the SQLAlchemy and Django integrations.

The context of a value is ``{"table": <table>, "column": <column>, "row": <row id>}``,
where the row id is the row salt (a client-generated UUID, as 32 hex digits) that
never changes over the row's life (``docs/fields.md``, "Row identity").

>>> row_context("users", "email", "7f3a").as_dict()
{'column': 'email', 'row': '7f3a', 'table': 'users'}
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from ..errors import ConfigError, DecryptionError
from .format import FieldContext, key_id_of


def row_context(table: str, column: str, row_salt: Any) -> FieldContext:
    """The context the ORM binds to the value of ``table.column`` in the row ``row_salt``.

    Equal to ``FieldContext(table=table, column=column, row=<salt hex>)``, built from a
    cached prefix and suffix of its canonical encoding (keys sort as column, row, table).
    """
    return _ContextMaker.get(table, column)(row_salt)


_new_context = object.__new__


class _ContextMaker:
    _cache: ClassVar[dict[tuple[str, str], _ContextMaker]] = {}

    def __init__(self, table: str, column: str) -> None:
        probe = FieldContext(table=table, column=column, row="")
        self._head = FieldContext(column=column).encoded + b"\0row\0"
        self._tail = b"\0table\0" + table.encode("utf-8")
        if self._head + self._tail != probe.encoded:  # pragma: no cover - layout invariant
            raise ConfigError("internal error: context layout mismatch")

    @classmethod
    def get(cls, table: str, column: str) -> _ContextMaker:
        maker = cls._cache.get((table, column))
        if maker is None:
            maker = cls._cache[(table, column)] = cls(table, column)
        return maker

    def __call__(self, row_salt: Any) -> FieldContext:
        cls = type(row_salt)
        row = row_salt if cls is str else (row_salt.hex if cls is uuid.UUID else row_id(row_salt))
        if "\0" in row:
            raise ConfigError("row identity must not contain NUL")
        ctx = _new_context(FieldContext)
        ctx.encoded = self._head + row.encode("utf-8") + self._tail
        ctx._items = None
        return ctx


def row_id(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError("the row salt is missing or of an unsupported type")


def is_sealed(stored: bytes | str, cipher: Any) -> bool:
    """Whether a stored value is a vk1 value of ``cipher``'s keyset (by its header alone).

    The dual-read types treat everything else as plaintext. A plaintext crafted to
    parse as one of the keyset's values then fails to decrypt: a loud error, never a
    silent misread.
    """
    kid = key_id_of(stored)
    return kid is not None and cipher.keyset.key_info(kid) is not None


def open_plain(plain: bytes, convert: Callable[[bytes], Any]) -> Any:
    """``convert(plain)`` (UTF-8 or JSON decoding of an authentic value), where a failure
    is the one DecryptionError, raised outside the handler: the decoder's exception
    (a ``UnicodeDecodeError`` or ``JSONDecodeError`` holds the whole plaintext) never
    chains to it."""
    try:
        return convert(plain)
    except Exception:  # noqa: BLE001, S110 - any decoding failure is the one DecryptionError
        pass
    raise DecryptionError()


def json_plain(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (sorted keys, no spaces, UTF-8)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        pass  # the error names the value's type; raised below without it
    raise ConfigError("an encrypted JSON value must be JSON-serialisable")


__all__ = ["is_sealed", "json_plain", "open_plain", "row_context", "row_id"]
