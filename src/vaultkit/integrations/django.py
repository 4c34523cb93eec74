"""Django model fields for encrypted columns and blind indexes (``pip install vaultkit[django]``).

Example (``tests/django_app/models.py`` is a working one)::

    from django.db import models
    from vaultkit.integrations.django import (BlindIndexField, EncryptedCharField,
                                              EncryptedJSONField, RowSaltField)

    class Customer(models.Model):
        row_salt = RowSaltField()
        email = EncryptedCharField(max_length=254)
        email_bi = BlindIndexField("email", normalizers=("strip", "casefold"))
        profile = EncryptedJSONField(null=True)

    # settings.py: where the keyset lives (a URI, or a loaded Keyset)
    VAULTKIT_FIELD_KEYSETS = {"default": "vault://secret/myapp/keyset"}

    Customer.objects.create(email="A@b.c", profile={"plan": "pro"})
    Customer.objects.get(email_bi="a@b.c ")      # the blind index finds it

How values are bound (the same contexts as the SQLAlchemy types, ``docs/fields.md``)
--------------------------------------------------------------------------------------
Every value is encrypted under ``{"table": <db_table>, "column": <column>, "row": <row
salt>}``. The row salt is a client-generated UUID (``RowSaltField``, filled at model
creation and never changed), so a ciphertext copied to another row, column or table
does not decrypt. Values are encrypted in ``pre_save`` (which sees the instance, hence
its salt) and stored as armored text (``vk1.``...) in a ``text`` column; loading keeps
the ciphertext and decrypts on first attribute access (the descriptor knows the row).
An unchanged value is written back as the same ciphertext.

What does not work, by design
-----------------------------
* Filtering or ordering on an encrypted field raises ``FieldError`` pointing to the
  blind index (ciphertexts are randomized: ``==`` could never match, order is noise);
  ``isnull`` is allowed.
* ``QuerySet.update(field=...)`` and ``bulk_update`` bypass ``pre_save`` (no row, no
  salt): binding a plain value raises ``ConfigError``. Use ``save()``.
* ``dumpdata`` serializes the decrypted value, like every other field.
* ``values()``/``values_list()`` return :class:`Sealed` placeholders for encrypted
  fields: without an instance there is no row to bind the decryption to.

``dual_read=True`` (the migration runbook, ``vaultkit field encrypt-column``) reads a
stored value that is not a vk1 value of the keyset as plaintext; ``write_plaintext=True``
(with it) writes plaintext, for leaving vaultkit with ``decrypt-column``. A dual-read
value stored in the other form is rewritten on every ``save()`` even if unchanged (with
its blind index), so a stale instance never undoes the migration for its row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core import checks
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from ..errors import ConfigError
from ..fields import BlindIndex, FieldCipher, Keyset
from ..fields.rows import is_sealed, open_plain, row_context, row_id

SETTING = "VAULTKIT_FIELD_KEYSETS"
_PLAIN = "_vaultkit_plain"

_ciphers: dict[str, FieldCipher] = {}
_keysets: dict[str, Keyset] = {}


def keyset_named(name: str) -> Keyset:
    """The keyset ``settings.VAULTKIT_FIELD_KEYSETS[name]`` (loaded once per process)."""
    ks = _keysets.get(name)
    if ks is None:
        from django.conf import settings

        spec = getattr(settings, SETTING, {}).get(name)
        if spec is None:
            raise ConfigError(f"no keyset {name!r} in settings.{SETTING}")
        ks = spec if isinstance(spec, Keyset) else Keyset.load(str(spec))
        _keysets[name] = ks
    return ks


def cipher_named(name: str) -> FieldCipher:
    cipher = _ciphers.get(name)
    if cipher is None:
        cipher = _ciphers[name] = FieldCipher(keyset_named(name))
    return cipher


def forget_keysets() -> None:
    """Drop the loaded keysets and ciphers (after changing the setting; tests)."""
    _ciphers.clear()
    _keysets.clear()


def _setting_changed(*, setting: str, **_: Any) -> None:
    if setting == SETTING:
        forget_keysets()


def _connect_signals() -> None:
    from django.test.signals import setting_changed

    setting_changed.connect(_setting_changed, dispatch_uid="vaultkit-field-keysets")


_connect_signals()


class Sealed:
    """A stored ciphertext, not decrypted yet (what ``from_db_value`` returns)."""

    __slots__ = ("blob",)

    def __init__(self, blob: str) -> None:
        self.blob = blob

    def __repr__(self) -> str:
        return f"Sealed(<{len(self.blob)} characters of ciphertext>)"


_salt_fields: dict[Any, RowSaltField] = {}


def _salt_field(model: Any) -> RowSaltField:
    found = _salt_fields.get(model)
    if found is not None:
        return found
    for f in model._meta.concrete_fields:
        if isinstance(f, RowSaltField):
            _salt_fields[model] = f
            return f
    raise ConfigError(f"{model.__name__} has encrypted fields but no RowSaltField; the row "
                      "identity is needed for each value's context")


def _row_salt(instance: Any, *, create: bool) -> str:
    salt_field = _salt_field(type(instance))
    salt = getattr(instance, salt_field.attname)
    if salt is None:
        if not create:
            raise ConfigError("row salt is missing on an existing row")
        salt = uuid.uuid4()
        setattr(instance, salt_field.attname, salt)
    return row_id(salt)


class _Opened(DeferredAttribute):
    """Decrypts a loaded ciphertext on first access, with the instance's row salt.

    A data descriptor (it has ``__set__``), so reads go through it even though the
    ciphertext sits in the instance ``__dict__``.
    """

    field: Any

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if not isinstance(value, Sealed):
            return value
        cache = instance.__dict__.setdefault(_PLAIN, {})
        opened = cache.get(self.field.attname)
        if opened is None or opened[0] is not value:
            opened = (value, self.field.open(instance, value))
            cache[self.field.attname] = opened
        return opened[1]


def _refuse(field: Any, what: str) -> FieldError:
    index = [f.name for f in field.model._meta.concrete_fields
             if isinstance(f, BlindIndexField) and f.source == field.name]
    hint = (f"filter on its blind index instead: .filter({index[0]}=...)" if index else
            f"add a BlindIndexField('{field.name}') and filter on it")
    return FieldError(f"{field.model.__name__}.{field.name} is encrypted: it cannot be "
                      f"{what} in SQL (its ciphertexts are randomized); {hint}. Ordering "
                      "needs the decrypted values: sort in Python.")


class _EncryptedCol(models.expressions.Col):
    """The column of an encrypted field: selecting it is fine, ordering by it is not.

    Django has no per-field hook for ORDER BY, so the column refuses to compile in a
    query that orders by its field (the whole query is wrong then, whichever clause
    is compiled first).
    """

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        query = compiler.query
        ordering = query.order_by or (query.get_meta().ordering if query.default_ordering
                                      else ())
        field = self.target
        for item in ordering:
            if not isinstance(item, str):
                continue
            path = item.lstrip("-").split("__")
            if path[-1] == field.name and (len(path) > 1 or query.model is field.model):
                raise _refuse(field, "ordered by")
        return super().as_sql(compiler, connection)


class EncryptedMixin:
    """What the encrypted field types share (the value is stored as armored text)."""

    descriptor_class = _Opened
    #: Mutable values (JSON) are re-encrypted on save once read; immutable ones are
    #: written back as the same ciphertext unless reassigned.
    mutable = False

    def __init__(self, *args: Any, keyset: str = "default", dual_read: bool = False,
                 write_plaintext: bool = False, **kwargs: Any) -> None:
        for option in ("primary_key", "unique", "db_index"):
            if kwargs.get(option):
                raise ConfigError(f"an encrypted field cannot be {option} (ciphertexts are "
                                  "randomized); index a BlindIndexField instead")
        if write_plaintext and not dual_read:
            raise ConfigError("write_plaintext=True is for leaving vaultkit; it needs "
                              "dual_read=True")
        self.keyset = keyset
        self.dual_read = dual_read
        self.write_plaintext = write_plaintext
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        if self.keyset != "default":
            kwargs["keyset"] = self.keyset
        if self.dual_read:
            kwargs["dual_read"] = True
        if self.write_plaintext:
            kwargs["write_plaintext"] = True
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[Any]:
        errors: list[Any] = super().check(**kwargs)  # type: ignore[misc]
        model: Any = self.model  # type: ignore[attr-defined]
        ordering = [o.lstrip("-") for o in model._meta.ordering if isinstance(o, str)]
        if self.name in ordering:  # type: ignore[attr-defined]
            errors.append(checks.Error(str(_refuse(self, "ordered by")), obj=self,
                                       id="vaultkit.E001"))
        return errors

    def get_internal_type(self) -> str:
        return "TextField"

    def db_type(self, connection: Any) -> Any:
        return models.TextField().db_type(connection)

    # -- conversions between the Python value and the plaintext bytes

    def to_plain(self, value: Any) -> bytes:
        raise NotImplementedError

    def from_plain(self, data: bytes) -> Any:
        raise NotImplementedError

    # -- storage

    def context(self, instance: Any, row: str) -> Any:
        # The table that holds the column: the field's own model, not the instance's class
        # (with multi-table inheritance a child instance writes the parent's column).
        model: Any = self.model  # type: ignore[attr-defined]
        return row_context(model._meta.db_table, self.column, row)  # type: ignore[attr-defined]

    def open(self, instance: Any, sealed: Sealed) -> Any:
        blob = sealed.blob
        cipher = cipher_named(self.keyset)
        if self.dual_read and not is_sealed(blob, cipher):
            return open_plain(blob.encode("utf-8"), self.from_plain)
        plain = cipher.decrypt(blob, context=self.context(instance, _row_salt(instance,
                                                                              create=False)))
        return open_plain(plain, self.from_plain)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else Sealed(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, Sealed):
            return value
        return super().to_python(value)  # type: ignore[misc]

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        attname = self.attname  # type: ignore[attr-defined]
        value = model_instance.__dict__.get(attname)
        if isinstance(value, Sealed):
            opened = model_instance.__dict__.get(_PLAIN, {}).get(attname)
            if self.mutable and opened is not None and opened[0] is value:
                value = opened[1]
            elif self.rewrites(value):
                value = getattr(model_instance, attname)  # opened through the descriptor
            else:
                return value  # unchanged: the same ciphertext, already bound to this row
        if value is None:
            return None
        plain = self.to_plain(value)
        if self.write_plaintext:
            return Sealed(open_plain(plain, _utf8))
        row = _row_salt(model_instance, create=add)
        return Sealed(cipher_named(self.keyset).encrypt(
            plain, context=self.context(model_instance, row), armored=True))

    def rewrites(self, sealed: Sealed) -> bool:
        """Whether a loaded value must be rewritten on save even if unchanged: under
        ``dual_read``, a value stored in the other form than this field writes (plaintext
        while encrypting, ciphertext while leaving vaultkit). Django's ``save()`` writes
        every field; writing it back as read would undo the column migration for the row
        (a stale instance saved after ``encrypt-column`` passed it)."""
        if not self.dual_read:
            return False
        return is_sealed(sealed.blob, cipher_named(self.keyset)) == self.write_plaintext

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.blob
        raise ConfigError("encrypted fields are written by Model.save() (which binds the row's "
                          "context); QuerySet.update() and bulk_update() bound a plain value")

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        return self.get_db_prep_value(value, connection)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        raise _refuse(self, "compared or filtered (lookup '" + lookup_name + "')")

    def get_transform(self, lookup_name: str) -> Any:
        raise _refuse(self, "transformed (lookup '" + lookup_name + "')")

    def get_col(self, alias: str, output_field: Any = None) -> Any:
        if output_field is None:
            output_field = self
        return _EncryptedCol(alias, self, output_field)


def _utf8(data: bytes) -> str:
    return data.decode("utf-8")


class EncryptedTextField(EncryptedMixin, models.TextField):
    """A ``str`` field stored encrypted, bound to its row."""

    def to_plain(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise ConfigError(f"{type(self).__name__} holds str values")
        return value.encode("utf-8")

    def from_plain(self, data: bytes) -> Any:
        return data.decode("utf-8")


class EncryptedCharField(EncryptedTextField, models.CharField):
    """Like :class:`EncryptedTextField`; ``max_length`` validates the plaintext (forms,
    ``full_clean``), while the column is ``text`` (the ciphertext is longer)."""


class EncryptedJSONField(EncryptedMixin, models.JSONField):
    """A JSON document stored encrypted. ``None`` is SQL NULL. Mutating a loaded value in
    place is saved (it is re-encrypted on save once read)."""

    mutable = True

    def to_plain(self, value: Any) -> bytes:
        ok = True
        try:
            text = json.dumps(value, cls=self.encoder, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)
        except (TypeError, ValueError):
            ok = False  # the error names the value's type; raised below without it
        if not ok:
            raise ConfigError("an encrypted JSON value must be JSON-serialisable")
        return text.encode("utf-8")

    def from_plain(self, data: bytes) -> Any:
        return json.loads(data, cls=self.decoder)

    def validate(self, value: Any, model_instance: Any) -> None:
        if isinstance(value, Sealed):
            return
        super().validate(value, model_instance)


class RowSaltField(models.UUIDField):
    """The row's identity in every encrypted value's context: a random UUID set when the
    model is created and never changed (changing it makes the row's values unreadable)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", uuid.uuid4)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("unique", True)
        super().__init__(*args, **kwargs)


class BlindIndexField(models.BinaryField):
    """The blind index of an encrypted field, computed from its plaintext on save.

    ``Model.objects.filter(email_bi="a@b.c")`` compares against the index of the
    (normalised) string. The index key is derived for ``"<db_table>.<source column>"``,
    as ``vaultkit field encrypt-column --index-column`` and the SQLAlchemy types do.
    """

    def __init__(self, source: str, *args: Any, normalizers: tuple[str, ...] = (),
                 length: int = 16, keyset: str = "default", **kwargs: Any) -> None:
        kwargs.setdefault("null", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        self.source = source
        self.normalizers = tuple(normalizers)
        self.length = length
        self.keyset = keyset
        self._index: BlindIndex | None = None
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        args = [self.source, *args]
        if self.normalizers:
            kwargs["normalizers"] = self.normalizers
        if self.length != 16:
            kwargs["length"] = self.length
        if self.keyset != "default":
            kwargs["keyset"] = self.keyset
        return name, path, args, kwargs

    def index(self) -> BlindIndex:
        if self._index is None:
            source = self.model._meta.get_field(self.source)
            self._index = BlindIndex(keyset_named(self.keyset),
                                     column=f"{self.model._meta.db_table}.{source.column}",
                                     length=self.length, normalizers=self.normalizers)
        return self._index

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        source = model_instance._meta.get_field(self.source)
        raw = model_instance.__dict__.get(source.attname)
        if isinstance(raw, Sealed) and not getattr(source, "mutable", False) \
                and not source.rewrites(raw):
            return getattr(model_instance, self.attname)  # source unchanged
        value = getattr(model_instance, source.attname)
        if value is not None and not isinstance(value, (str, bytes)):
            raise ConfigError("blind indexes cover str and bytes fields")
        index = None if value is None else self.index().compute(value)
        setattr(model_instance, self.attname, index)
        return index

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.index().compute(value)
        return super().get_prep_value(value)


__all__ = [
    "BlindIndexField", "EncryptedCharField", "EncryptedJSONField", "EncryptedMixin",
    "EncryptedTextField", "RowSaltField", "Sealed", "cipher_named", "forget_keysets",
    "keyset_named",
]
