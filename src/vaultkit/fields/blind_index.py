"""Blind indexes: equality search over encrypted columns, with a planner for their length.

A blind index is ``HMAC-SHA256(column_key, normalise(value))`` truncated to a
planned length, stored in its own column next to the ciphertext. The column key
is derived with HKDF-SHA256 from the keyset's *index root key* (a separate key,
wrapped like the data keys) and the column name, so:

* the encryption keys are never used for indexing (an index leak says nothing
  about them, and rotating data keys does not touch indexes);
* equal values give different indexes in different columns (no cross-column joins).

>>> from vaultkit.fields import Keyset
>>> ks = Keyset.create("bi-doc", kek="memory://bi-doc")
>>> idx = BlindIndex(ks, column="users.email", normalizers=("strip", "casefold"), length=8)
>>> idx.compute(" A@Example.com ") == idx.compute("a@example.com")
True
>>> len(idx.compute("a@example.com"))
8
>>> plan_index_length(rows=1_000_000, false_positive_rate=0.001).bits
30

Index keys rotate through versioned index columns (``email_bi_v1``,
``email_bi_v2``): add a root key version (``Keyset.rotate_index_key``), write
both columns, backfill the new one, switch queries, drop the old column, retire
the old version. ``docs/fields.md`` has the runbook.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigError
from ..secret import Secret

Normalizer = Callable[[str], str]

#: Built-in normalisers, applied in the order given.
NORMALIZERS: dict[str, Normalizer] = {
    "strip": str.strip,
    "casefold": str.casefold,
    "lower": str.lower,
    "nfkc": lambda s: unicodedata.normalize("NFKC", s),
    "collapse_spaces": lambda s: " ".join(s.split()),
    "digits": lambda s: "".join(ch for ch in s if ch.isdigit()),
}

MIN_LENGTH = 4
MAX_LENGTH = 32
_HKDF_SALT = b"vaultkit/blind-index/v1"


class IndexKeySource(Protocol):
    def index_versions(self) -> list[tuple[int, str]]: ...

    def index_root(self, version: int) -> Secret[bytes]: ...


def column_key(root: bytes, column: str, version: int) -> bytes:
    """The per-column HMAC key: HKDF-SHA256(root, salt, info = "column:<name>|v<version>")."""
    info = f"column:{column}|v{version}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(root)


@dataclass(frozen=True)
class IndexPlan:
    """A planned index length and what it means for a table of ``rows`` rows."""

    rows: int
    false_positive_rate: float
    bits: int
    length: int
    #: Expected rows that match a lookup by accident (``rows * 2**-(8*length)``).
    expected_false_positives: float


def plan_index_length(*, rows: int, false_positive_rate: float) -> IndexPlan:
    """Choose the index length for ``rows`` rows and an accepted false-positive rate.

    A lookup compares the probe's index with every stored index; each unrelated
    row matches with probability ``2**-bits``, so a lookup returns on average
    ``rows * 2**-bits`` wrong rows (which decryption then discards). Requiring
    that to be at most ``false_positive_rate`` gives
    ``bits = ceil(log2(rows / false_positive_rate))``, rounded up to whole bytes
    and clamped to 4..32 bytes.

    The trade-off: a longer index returns fewer wrong rows but is a more precise
    fingerprint. Any blind index reveals which rows share a value (frequency);
    truncation adds deniability only once ``bits < log2(rows)``, which costs a
    false-positive rate above 1 per lookup. See ``docs/fields.md``.
    """
    if rows < 1:
        raise ConfigError("rows must be at least 1")
    if not 0 < false_positive_rate < 1:
        raise ConfigError("false_positive_rate must be between 0 and 1 (exclusive)")
    bits = math.ceil(math.log2(rows / false_positive_rate))
    length = min(MAX_LENGTH, max(MIN_LENGTH, math.ceil(bits / 8)))
    return IndexPlan(rows, false_positive_rate, bits, length, rows * 2.0 ** (-8 * length))


class BlindIndex:
    """The blind index of one column, for one index key version.

    ``column`` names the column (use ``"table.column"``). ``normalizers`` are
    names from :data:`NORMALIZERS` or callables, applied in order before hashing.
    """

    def __init__(self, keyset: IndexKeySource, *, column: str, length: int = 16,
                 normalizers: Sequence[str | Normalizer] = (), version: int | None = None
                 ) -> None:
        if not column:
            raise ConfigError("a blind index needs a column name")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise ConfigError(f"blind index length must be {MIN_LENGTH}..{MAX_LENGTH} bytes")
        self.column = column
        self.length = length
        self._normalizers = tuple(_normalizer(n) for n in normalizers)
        self._keyset = keyset
        self.version = version if version is not None else _latest_active(keyset)
        self._base: hmac.HMAC | None = None

    def __repr__(self) -> str:
        return f"BlindIndex({self.column!r}, v{self.version}, length={self.length})"

    def __hash__(self) -> int:
        return hash((self.column, self.version, self.length, id(self._keyset)))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BlindIndex) and other.column == self.column
                and other.version == self.version and other.length == self.length
                and other._keyset is self._keyset)

    def normalize(self, value: str) -> str:
        for fn in self._normalizers:
            value = fn(value)
        return value

    def compute(self, value: str | bytes) -> bytes:
        """The index of ``value`` (str is normalised, then UTF-8 encoded)."""
        base = self._base
        if base is None:
            key = column_key(self._keyset.index_root(self.version).reveal(), self.column,
                             self.version)
            base = self._base = hmac.HMAC(key, hashes.SHA256())
        if isinstance(value, str):
            data = self.normalize(value).encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        else:
            raise ConfigError("a blind index takes str or bytes")
        # copy() reuses the keyed inner/outer state, so each index costs two hashes only.
        h = base.copy()
        h.update(data)
        return h.finalize()[: self.length]

    def compute_many(self, values: Iterable[str | bytes]) -> list[bytes]:
        return [self.compute(v) for v in values]


def blind_index(value: str | bytes, *, column: str, keyset: IndexKeySource, length: int = 16,
                normalizers: Sequence[str | Normalizer] = (), version: int | None = None
                ) -> bytes:
    """One-off blind index (build a :class:`BlindIndex` to reuse the derived key).

    >>> from vaultkit.fields import Keyset
    >>> ks = Keyset.create("bi-fn", kek="memory://bi-fn")
    >>> len(blind_index("x", column="t.c", keyset=ks, length=12))
    12
    """
    return BlindIndex(keyset, column=column, length=length, normalizers=normalizers,
                      version=version).compute(value)


def _normalizer(n: str | Normalizer) -> Normalizer:
    if callable(n):
        return n
    found = NORMALIZERS.get(n)
    if found is None:
        raise ConfigError(f"unknown normaliser {n!r}; known: {', '.join(sorted(NORMALIZERS))}")
    return found


def _latest_active(keyset: IndexKeySource) -> int:
    active = [v for v, state in keyset.index_versions() if state == "active"]
    if not active:
        raise ConfigError("keyset has no active blind-index key; run rotate_index_key()")
    return max(active)


__all__ = ["BlindIndex", "IndexPlan", "NORMALIZERS", "blind_index", "column_key",
           "plan_index_length"]
