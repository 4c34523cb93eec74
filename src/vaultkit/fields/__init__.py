"""Field encryption: keysets, ``FieldCipher``, blind indexes, SQLAlchemy types, re-encryption.

>>> from vaultkit.fields import FieldCipher, Keyset
>>> ks = Keyset.create("demo", kek="memory://demo")
>>> cipher = FieldCipher(ks)
>>> ctx = {"table": "users", "column": "email", "row": "7"}
>>> cipher.decrypt(cipher.encrypt(b"x", context=ctx), context=ctx)
b'x'

The wire format ("vk1") is specified in ``docs/FORMAT.md``; the SQLAlchemy
types live in :mod:`vaultkit.fields.sqlalchemy` (imported only when used).
"""

from __future__ import annotations

from .blind_index import BlindIndex, IndexPlan, blind_index, plan_index_length
from .cipher import FieldCipher
from .format import FieldContext, armor, dearmor, encode_context, key_id_of
from .keyset import KeyInfo, Keyset

__all__ = [
    "BlindIndex",
    "FieldCipher",
    "FieldContext",
    "IndexPlan",
    "KeyInfo",
    "Keyset",
    "armor",
    "blind_index",
    "dearmor",
    "encode_context",
    "key_id_of",
    "plan_index_length",
]
