"""The "vk1" ciphertext layout, its armored text form and the canonical context encoding.

Binary layout (``docs/FORMAT.md`` is the normative description)::

    suite(1) | key_id(4, big-endian) | nonce(12 or 24) | ciphertext | tag(16)

The first byte names both the format version and the suite (``0x01``-``0x0f``
are version 1). The associated data is ``suite || key_id || canonical(context)``;
the context is never stored.

>>> armor(b"\\x01abcd")
'vk1.AWFiY2Q'
>>> dearmor("vk1.AWFiY2Q")
b'\\x01abcd'
>>> encode_context({"row": "7", "col": "email"})
b'col\\x00email\\x00row\\x007'
"""

from __future__ import annotations

import base64
import binascii
import itertools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError, DecryptionError

HEADER_BYTES = 5
TAG_BYTES = 16
ARMOR_PREFIX = "vk1."


@dataclass(frozen=True)
class Suite:
    """One AEAD suite of the vk1 format."""

    id: int
    name: str
    key_bytes: int
    nonce_bytes: int
    #: False for suites kept only to read (and migrate) existing data.
    writable: bool

    @property
    def overhead(self) -> int:
        return HEADER_BYTES + self.nonce_bytes + TAG_BYTES


XAES_256_GCM = Suite(0x01, "xaes-256-gcm", 32, 24, True)
AES_256_GCM = Suite(0x02, "aes-256-gcm", 32, 12, False)
AES_128_GCM = Suite(0x03, "aes-128-gcm", 16, 12, False)

SUITES_BY_ID: dict[int, Suite] = {s.id: s for s in (XAES_256_GCM, AES_256_GCM, AES_128_GCM)}
SUITES_BY_NAME: dict[str, Suite] = {s.name: s for s in SUITES_BY_ID.values()}


def suite_named(name: str) -> Suite:
    suite = SUITES_BY_NAME.get(name)
    if suite is None:
        raise ConfigError(f"unknown field-encryption suite {name!r}; known: "
                          + ", ".join(sorted(SUITES_BY_NAME)))
    return suite


def header(suite_id: int, key_id: int) -> bytes:
    """The 5-byte header ``suite || key_id`` (also the first part of the AAD)."""
    return bytes((suite_id,)) + key_id.to_bytes(4, "big")


def key_id_of(blob: bytes | str | memoryview) -> int | None:
    """The key id of a vk1 blob or armored string, read from the header without decrypting.

    Returns ``None`` when the value is not a vk1 ciphertext. Used by re-encryption
    (skip rows already on the primary key) and ``keyset retire`` (count rows per key).
    """
    if isinstance(blob, str):
        if not blob.startswith(ARMOR_PREFIX):
            return None  # plaintext (encrypt_column, dual-read types): no exception to build
        try:
            raw = dearmor(blob)
        except DecryptionError:
            return None
    else:
        raw = bytes(blob)
    if len(raw) < HEADER_BYTES + TAG_BYTES or raw[0] not in SUITES_BY_ID:
        return None
    suite = SUITES_BY_ID[raw[0]]
    if len(raw) < suite.overhead:
        return None
    return int.from_bytes(raw[1:5], "big")


# --- armor ------------------------------------------------------------------------------


def armor(blob: bytes) -> str:
    """``vk1.`` + unpadded base64url, for text columns."""
    return ARMOR_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def dearmor(text: str) -> bytes:
    """Decode an armored value; anything malformed or non-canonical is a DecryptionError.

    Non-canonical encodings (different trailing bits, padding, whitespace) are
    refused so that every armored ciphertext has exactly one spelling: a changed
    character always means a changed (and then unauthenticated) blob.
    """
    if not text.startswith(ARMOR_PREFIX):
        raise DecryptionError()
    body = text[len(ARMOR_PREFIX):]
    try:
        raw: bytes | None = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_",
                                             validate=True)
    except (binascii.Error, ValueError):
        raw = None
    # Raised outside the handler: no chained exception (docs/FORMAT.md section 6).
    if raw is None or armor(raw) != text:
        raise DecryptionError()
    return raw


# --- canonical context ----------------------------------------------------------------


class FieldContext:
    """A context whose canonical encoding is computed once (for hot loops).

    >>> ctx = FieldContext(table="users", column="email", row="42")
    >>> ctx.encoded == encode_context({"row": "42", "table": "users", "column": "email"})
    True
    """

    __slots__ = ("_items", "encoded")

    def __init__(self, mapping: Mapping[str, str] | None = None, /, **items: str) -> None:
        merged = dict(mapping or {})
        merged.update(items)
        pairs: list[tuple[str, str]] = sorted(merged.items())
        self.encoded = _encode_items(pairs)
        self._items: tuple[tuple[str, str], ...] | None = tuple(pairs)

    @classmethod
    def _trusted(cls, encoded: bytes) -> FieldContext:
        """A context from bytes the caller built in canonical form itself (hot paths such
        as the SQLAlchemy types precompute the fixed part of the encoding)."""
        ctx = cls.__new__(cls)
        ctx.encoded = encoded
        ctx._items = None
        return ctx

    def as_dict(self) -> dict[str, str]:
        if self._items is None:
            parts = self.encoded.decode("utf-8").split("\0") if self.encoded else []
            return dict(zip(parts[::2], parts[1::2], strict=True))
        return dict(self._items)

    def __repr__(self) -> str:
        # Context values are identifiers (table, column, row id), not secrets.
        return f"FieldContext({self.as_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldContext) and other.encoded == self.encoded

    def __hash__(self) -> int:
        return hash(self.encoded)


ContextLike = Mapping[str, str] | FieldContext


_chain = itertools.chain.from_iterable


_CONTEXT_TYPES = "field context keys and values must be str"


def _encode_items(items: list[tuple[str, str]]) -> bytes:
    # items are sorted by key (keys are unique, so values are never compared).
    try:
        text: str | None = "\0".join(_chain(items))
    except TypeError:
        text = None
    # Errors are raised outside the handlers: nothing chains (docs/FORMAT.md section 6).
    if text is None:
        raise ConfigError(_CONTEXT_TYPES)
    # Exactly one separator between every two strings: no key or value contains NUL,
    # which is what makes the encoding injective.
    if items and text.count("\0") != 2 * len(items) - 1:
        raise ConfigError("field context keys and values must not contain NUL")
    return _utf8(text)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8", "strict")
    except UnicodeEncodeError:  # a lone surrogate: not a valid Unicode string
        pass
    raise ConfigError("field context keys and values must be valid Unicode")


# The encoding plan of a plain dict context, per number of entries: a function that
# returns the canonical bytes of a dict with exactly the plan's key set, or None (another
# key set of that size, a value that is not a NUL-free str, non-ASCII text): the caller
# then takes the generic path, which raises the precise error. Contexts of one
# application share a handful of key sets ({table, column, row}); a plan skips the
# sort and the per-entry work, and its output is byte-for-byte the generic one (the
# same join over the same sorted entries). It is found by the dict's size alone: a
# dict of n entries holding all n keys of a plan has exactly that key set, so no tuple
# of its keys is built per call. Plans of other key sets wait in _PLANS_BY_KEYS.
_Plan = Callable[[Mapping[str, str]], "bytes | None"]
_PLANS: dict[int, _Plan] = {}
_PLANS_BY_KEYS: dict[tuple[str, ...], _Plan] = {}
_MAX_PLANS = 256


def _make_plan(keys: list[str]) -> _Plan:
    """The plan of one sorted key set; common sizes get an unrolled join."""
    separators = 2 * len(keys) - 1

    def finish(text: str) -> bytes | None:
        if text.count("\0") != separators:
            return None  # a value holds NUL: the generic path raises
        return text.encode("ascii") if text.isascii() else None

    if len(keys) == 2:
        k1, k2 = keys

        def plan2(d: Mapping[str, str]) -> bytes | None:
            try:
                text = "\0".join((k1, d[k1], k2, d[k2]))
            except (KeyError, TypeError):
                return None
            return finish(text)
        return plan2
    if len(keys) == 3:
        k1, k2, k3 = keys

        def plan3(d: Mapping[str, str]) -> bytes | None:
            try:
                text = "\0".join((k1, d[k1], k2, d[k2], k3, d[k3]))
            except (KeyError, TypeError):
                return None
            # (finish() inlined: this is the {table, column, row} shape of every ORM row)
            if text.count("\0") != 5 or not text.isascii():
                return None
            return text.encode("ascii")
        return plan3
    if len(keys) == 4:
        k1, k2, k3, k4 = keys

        def plan4(d: Mapping[str, str]) -> bytes | None:
            try:
                text = "\0".join((k1, d[k1], k2, d[k2], k3, d[k3], k4, d[k4]))
            except (KeyError, TypeError):
                return None
            return finish(text)
        return plan4
    getter = operator.itemgetter(*keys)
    template: list[str] = []
    for key in keys:
        template += (key, "")

    def plan_n(d: Mapping[str, str]) -> bytes | None:
        try:
            parts = template.copy()
            parts[1::2] = getter(d)
            text = "\0".join(parts)
        except (KeyError, TypeError):
            return None
        return finish(text)
    return plan_n


def _plan_for(context: dict[str, str]) -> _Plan:
    # Called only after the generic path accepted the context: keys are NUL-free str.
    keys = tuple(context)
    plan = _PLANS_BY_KEYS.get(keys)
    if plan is None:
        plan = _make_plan(sorted(keys))
        if len(_PLANS_BY_KEYS) < _MAX_PLANS:
            _PLANS_BY_KEYS[keys] = plan
    return plan


def encode_context(context: ContextLike) -> bytes:
    """The canonical, injective byte encoding of a context (``docs/FORMAT.md`` section 3).

    The entries sorted by key (Unicode code point order, which is also UTF-8 byte
    order), flattened to ``key1, value1, key2, value2, ...`` and joined with a
    single NUL byte, then UTF-8 encoded. NUL is forbidden inside keys and values,
    so the string splits back into exactly one context: no context can be
    forged from another. An empty context encodes to the empty string.
    """
    if type(context) is FieldContext:
        return context.encoded
    if type(context) is dict:
        plan = _PLANS.get(len(context))
        if plan is not None:
            encoded = plan(context)
            if encoded is not None:
                return encoded
    elif not isinstance(context, Mapping):
        raise ConfigError("context must be a mapping of str to str or a FieldContext")
    try:
        items: list[tuple[str, str]] | None = sorted(context.items())
    except TypeError:
        items = None
    if items is None:
        raise ConfigError(_CONTEXT_TYPES)
    encoded = _encode_items(items)
    if type(context) is dict and 2 <= len(items) <= 64 and encoded.isascii():
        _PLANS[len(items)] = _plan_for(context)
    return encoded


__all__ = [
    "AES_128_GCM", "AES_256_GCM", "ARMOR_PREFIX", "ContextLike", "FieldContext", "HEADER_BYTES",
    "SUITES_BY_ID", "SUITES_BY_NAME", "Suite", "TAG_BYTES", "XAES_256_GCM", "armor", "dearmor",
    "encode_context", "header", "key_id_of", "suite_named",
]
