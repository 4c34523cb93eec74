"""Copies of vaultkit errors without their exception chain.

Field encryption promises that no exception it raises carries a ``__cause__`` or
``__context__`` (``docs/FORMAT.md`` section 6): an error reporter that walks the
chain (Sentry does) must find nothing but vaultkit's own message. When a key
provider or a store raises a vaultkit error that chains a library exception
(botocore, urllib3, json), the field code re-raises a copy made here, outside
the handler that caught the original.
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import VaultkitError

E = TypeVar("E", bound=VaultkitError)


def detached(exc: E) -> E:
    """A copy of ``exc`` (same class, message, source, reference, status) with no chain."""
    copy = type(exc).__new__(type(exc))
    copy.__dict__.update(exc.__dict__)
    copy.args = exc.args
    return copy


__all__ = ["detached"]
