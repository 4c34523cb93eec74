"""Blind indexes: separate derived keys per column and version, normalisers, the planner."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from vaultkit.errors import ConfigError, KeysetError
from vaultkit.fields import BlindIndex, Keyset, blind_index, plan_index_length
from vaultkit.fields.blind_index import column_key


@pytest.fixture
def ks() -> Keyset:
    return Keyset.create("bi", kek="memory://fields-bi")


def test_matches_the_documented_construction(ks: Keyset) -> None:
    idx = BlindIndex(ks, column="users.email", length=16)
    root = ks.index_root(1).reveal()
    key = column_key(root, "users.email", 1)
    expected = hmac.new(key, b"a@b.c", hashlib.sha256).digest()[:16]
    assert idx.compute("a@b.c") == expected
    assert blind_index("a@b.c", column="users.email", keyset=ks) == expected


def test_never_uses_the_encryption_keys(ks: Keyset) -> None:
    idx = BlindIndex(ks, column="users.email", length=32)
    for key_id in (k.id for k in ks.all_keys()):
        data_key = ks.data_key(key_id).reveal()
        assert ks.index_root(1).reveal() != data_key
        for candidate in (data_key, column_key(data_key, "users.email", 1)):
            assert idx.compute("x") != hmac.new(candidate, b"x", hashlib.sha256).digest()
    before = idx.compute("x")
    ks.rotate()  # rotating data keys leaves indexes unchanged
    assert BlindIndex(ks, column="users.email", length=32).compute("x") == before


def test_columns_and_versions_are_separated(ks: Keyset) -> None:
    a = BlindIndex(ks, column="users.email").compute("x")
    b = BlindIndex(ks, column="admins.email").compute("x")
    assert a != b
    v2 = ks.rotate_index_key()
    assert v2 == 2
    new = BlindIndex(ks, column="users.email")
    assert new.version == 2 and new.compute("x") != a
    assert BlindIndex(ks, column="users.email", version=1).compute("x") == a
    ks.retire_index_key(1)
    with pytest.raises(KeysetError):
        BlindIndex(ks, column="users.email", version=1).compute("x")


def test_normalisers(ks: Keyset) -> None:
    idx = BlindIndex(ks, column="u.e", normalizers=("nfkc", "strip", "casefold"))
    assert idx.compute("  ALICE@Example.COM ") == idx.compute("alice@example.com")
    assert idx.compute("ﬁ@x") == idx.compute("fi@x")
    raw = BlindIndex(ks, column="u.e")
    assert raw.compute("A") != raw.compute("a")
    phone = BlindIndex(ks, column="u.p", normalizers=("digits",))
    assert phone.compute("+1 (555) 010-9999") == phone.compute("15550109999")
    custom = BlindIndex(ks, column="u.c", normalizers=(lambda s: s[:3],))
    assert custom.compute("abcdef") == custom.compute("abcxyz")
    with pytest.raises(ConfigError):
        BlindIndex(ks, column="u.e", normalizers=("soundex",))
    with pytest.raises(ConfigError):
        BlindIndex(ks, column="u.e", length=2)


@pytest.mark.parametrize(("rows", "fp", "bits", "length"), [
    (1_000, 0.01, 17, 4),
    (1_000_000, 0.001, 30, 4),
    (100_000_000, 1e-6, 47, 6),
    (10**12, 1e-9, 70, 9),
])
def test_planner(rows: int, fp: float, bits: int, length: int) -> None:
    plan = plan_index_length(rows=rows, false_positive_rate=fp)
    assert (plan.bits, plan.length) == (bits, length)
    assert plan.expected_false_positives <= fp
    assert rows * 2.0 ** -(8 * (plan.length - 1)) > fp or plan.length == 4  # not longer than needed


def test_planner_rejects_nonsense() -> None:
    with pytest.raises(ConfigError):
        plan_index_length(rows=0, false_positive_rate=0.1)
    with pytest.raises(ConfigError):
        plan_index_length(rows=10, false_positive_rate=1.5)
