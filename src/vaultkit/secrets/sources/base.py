"""The :class:`SecretSource` protocol and the values that flow between planner, sources and loader.

A source turns *fetch units* (references without their ``#fragment``) into
:class:`Fetched` documents. It does so in two steps so the planner can show
and batch the calls before any is made:

* :meth:`SecretSource.plan` groups units into :class:`Call`\\ s (one per API
  request: a Secrets Manager batch of 20, an SSM batch of 10, one Vault read);
* :meth:`SecretSource.execute` makes one call and returns a :class:`CallResult`:
  a :class:`Fetched` or a :class:`VaultkitError` per unit, plus follow-up calls
  (for example per-secret reads after a batch call was denied).

Sources with leases (Vault dynamic secrets) also implement ``renew`` and
``revoke``; the others inherit :class:`BaseSource`'s answers ("cannot renew,
re-fetch instead"; "nothing to revoke").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ...errors import InvalidReferenceError, VaultkitError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline

UnitKey = tuple[Any, ...]


@dataclass(frozen=True)
class Lease:
    """A Vault lease: renew it before ``duration`` runs out, or fetch again."""

    lease_id: str
    duration: float
    renewable: bool
    issued_at: float = field(default_factory=time.monotonic)

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.duration


@dataclass(frozen=True)
class Fetched:
    """What one fetch unit returned: the whole document (redacted) and its metadata."""

    document: Secret[str] | Secret[bytes]
    #: True when the document is a JSON object (KV data, dynamic creds) rather than raw text.
    structured: bool = False
    version: str | None = None
    lease: Lease | None = None
    fetched_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Call:
    """One planned API request. ``units`` are representative references (fragments dropped)."""

    source: str
    operation: str
    units: tuple[Reference, ...]
    target: str = ""

    def describe(self) -> str:
        names = ", ".join(u.display for u in self.units)
        target = f" {self.target}" if self.target else ""
        return f"{self.source}: {self.operation}{target} [{names}]"


@dataclass
class CallResult:
    results: dict[UnitKey, Fetched | VaultkitError] = field(default_factory=dict)
    followups: list[Call] = field(default_factory=list)


@runtime_checkable
class SecretSource(Protocol):
    """A backend that resolves references of one or more schemes.

    Every implementation passes ``tests/contracts/secret_source.py``.
    """

    #: The schemes this source resolves (``("awssm",)``, ``("vault",)``, ...). A source
    #: may also declare ``options`` (its query options) and ``check_locator(scheme,
    #: locator, options)`` (validation); :class:`BaseSource` has both. Wildcard
    #: references (``/*``, ``/**``) need ``expand(ref, deadline) -> Expansion``.
    schemes: tuple[str, ...]

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        """Group fetch units into API calls, batching where the API allows. Makes no call."""
        ...

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        """Make one planned call.

        A failure of the whole call (network, throttling, sealed) is *raised*, so the
        loader can retry it; a per-unit failure inside a batch goes in the result.
        """
        ...

    def renew(self, lease: Lease) -> Lease | None:
        """Renew a lease; ``None`` means "cannot renew: fetch again"."""
        ...

    def revoke(self, lease: Lease) -> None:
        """Revoke a lease (on shutdown). A no-op for sources without leases."""
        ...


class BaseSource:
    """Defaults: one call per unit, no leases, any non-empty locator, no extra options."""

    schemes: tuple[str, ...] = ()
    #: Query options this source accepts besides ``optional``, ``default`` and ``encoding``.
    options: frozenset[str] = frozenset()
    operation = "read"

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        """Validate (and normalise) a locator; raise :class:`InvalidReferenceError` if bad.

        Called by :func:`parse_reference` with the reference's query options.
        """
        if not locator:
            raise InvalidReferenceError(f"{scheme}:// needs a locator")
        return locator

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        return [Call(u.scheme, self.operation, (u,), target=u.locator if u.scheme != "kms"
                     else "") for u in units]

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        # A failure of a single-unit call is raised so the loader can retry it if transient.
        result = CallResult()
        for unit in call.units:
            result.results[unit.unit] = self.fetch(unit, deadline)
        return result

    def fetch(self, unit: Reference, deadline: Deadline) -> Fetched:  # pragma: no cover
        raise NotImplementedError

    def renew(self, lease: Lease) -> Lease | None:
        return None

    def revoke(self, lease: Lease) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ = ["BaseSource", "Call", "CallResult", "Fetched", "Lease", "SecretSource", "UnitKey"]
