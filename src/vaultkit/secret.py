"""A value that redacts itself.

``Secret`` wraps a ``str`` or ``bytes`` so that ``str()``, ``repr()``,
f-strings, ``%`` formatting, logging and pickling never show it. Only
:meth:`Secret.reveal` returns the value, which makes every place that needs
the plaintext easy to find with grep.
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar

T = TypeVar("T", str, bytes)

REDACTED = "********"


class Secret(Generic[T]):
    """A redacting holder for a secret ``str`` or ``bytes``.

    >>> pw = Secret("hunter2")
    >>> pw
    Secret('********')
    >>> f"{pw}"
    '********'
    >>> pw.reveal()
    'hunter2'
    >>> pw == Secret("hunter2")
    True

    Equality between two ``Secret`` objects is constant-time
    (:func:`hmac.compare_digest`). Comparing with a plain value is always
    ``False``, so a secret cannot be probed with ``==`` by accident. Secrets are
    unhashable (a hash would be a stable function of the value) and refuse to
    be pickled or copied into a string.
    """

    __slots__ = ("_label", "_value")
    _value: T
    _label: str | None

    def __init__(self, value: T, *, label: str | None = None) -> None:
        if not isinstance(value, (str, bytes)):
            raise TypeError("Secret holds str or bytes")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_label", label)

    def reveal(self) -> T:
        """Return the plaintext value. Every caller of this is a place a value leaves."""
        return self._value

    @property
    def label(self) -> str | None:
        """A non-secret name for the value (for example the reference it came from)."""
        return self._label

    def __repr__(self) -> str:
        if self._label:
            return f"Secret({self._label!r}, '{REDACTED}')"
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __bytes__(self) -> NoReturn:
        raise TypeError("use Secret.reveal() to get the value")

    def __eq__(self, other: object) -> bool:
        import hmac  # imported on first use: _hashlib costs a few ms at start-up

        if not isinstance(other, Secret):
            return False
        a: str | bytes = self._value
        b: str | bytes = other._value
        if type(a) is not type(b):
            return False
        a_b = a.encode() if isinstance(a, str) else a
        b_b = b.encode() if isinstance(b, str) else b
        return hmac.compare_digest(a_b, b_b)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __copy__(self) -> Secret[T]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret[T]:
        return self


def reveal(value: Secret[T] | T) -> T:
    """Return the plaintext of a ``Secret``, or the value itself if it is plain."""
    if isinstance(value, Secret):
        return value.reveal()
    return value


__all__ = ["REDACTED", "Secret", "reveal"]
