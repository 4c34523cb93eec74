from __future__ import annotations

import copy
import logging
import pickle

import pytest

from vaultkit.secret import REDACTED, Secret, reveal


def test_str_repr_format_never_show_the_value(leak_canary) -> None:
    value = leak_canary.new()
    s = Secret(value)
    assert value not in str(s)
    assert value not in repr(s)
    assert value not in f"{s}"
    assert value not in f"{s!r}"
    assert value not in f"{s:>40}"
    assert value not in "%s %r" % (s, s)  # noqa: UP031 - %-formatting is what we test
    assert value not in f"{s} {s!r}"
    assert str(s) == REDACTED
    logging.getLogger("vaultkit.test").debug("secret is %s / %r", s, s)
    print(s, [s], {"k": s})
    leak_canary.watch(s, [s], {"k": s})


def test_label_is_shown_value_is_not(leak_canary) -> None:
    value = leak_canary.new()
    s = Secret(value, label="vault://kv/app#pw")
    assert "vault://kv/app#pw" in repr(s)
    leak_canary.watch(s)


def test_reveal_returns_the_value() -> None:
    assert Secret("abc").reveal() == "abc"
    assert Secret(b"\x00\x01").reveal() == b"\x00\x01"
    assert reveal(Secret("x")) == "x"
    assert reveal("plain") == "plain"


def test_equality_is_between_secrets_only() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never compares equal to a plain value
    assert Secret(b"a") != Secret("a")


def test_equality_uses_constant_time_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Secret("same") == Secret("same")
    assert calls == [(4, 4)]


def test_pickling_is_refused(leak_canary) -> None:
    s = Secret(leak_canary.new())
    with pytest.raises(TypeError) as info:
        pickle.dumps(s)
    leak_canary.watch_exception(info.value)
    with pytest.raises(TypeError):
        pickle.dumps({"nested": [s]})


def test_bytes_conversion_is_refused() -> None:
    with pytest.raises(TypeError):
        bytes(Secret(b"x"))  # type: ignore[call-overload]


def test_unhashable_and_immutable() -> None:
    s = Secret("x")
    with pytest.raises(TypeError):
        hash(s)
    with pytest.raises(AttributeError):
        s._value = "y"  # type: ignore[misc]


def test_copy_keeps_the_same_object() -> None:
    s = Secret("x")
    assert copy.copy(s) is s
    assert copy.deepcopy({"a": s})["a"] is s


def test_only_str_or_bytes() -> None:
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[type-var]
