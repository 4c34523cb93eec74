"""Plan before calling: parse every reference, dedupe fetch units, batch per backend.

``username`` and ``password`` from one ``vault+dyn://`` path, or ten keys of
one Secrets Manager JSON secret, are one *unit* and one fetch. Units are
handed to their source's ``plan`` which batches what its API allows
(Secrets Manager 20 per call, SSM 10 per call). The plan is data: ``vaultkit
secrets plan`` prints it, tests and the benchmark count its calls.

>>> from vaultkit.secrets.sources import default_sources
>>> plan = make_plan({"A": "ssm:///a", "B": "ssm:///b", "C": "env://HOME"}, default_sources())
>>> [c.operation for c in plan.calls]
['GetParameters(WithDecryption)', 'getenv']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError, VaultkitError
from .refs import Reference, parse_reference
from .retry import Deadline
from .sources.base import Call, Fetched, SecretSource, UnitKey
from .wildcards import Expansion, env_name, prefix_of


@dataclass
class Plan:
    #: name -> parsed reference (only the valid ones)
    refs: dict[str, Reference] = field(default_factory=dict)
    #: name -> why the reference is invalid (nothing is fetched for these names)
    invalid: dict[str, VaultkitError] = field(default_factory=dict)
    #: unique fetch units, in first-seen order
    units: dict[UnitKey, Reference] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    #: wildcard name -> the names (or ``PREFIX_<KEY>`` patterns) it expanded to
    expanded: dict[str, list[str]] = field(default_factory=dict)
    #: wildcard name -> (path, unit) whose every key becomes a name once fetched (Vault)
    per_key: dict[str, list[tuple[str, Reference]]] = field(default_factory=dict)
    #: values read while expanding wildcards (SSM by path): not fetched again
    prefetched: dict[UnitKey, Fetched] = field(default_factory=dict)
    #: listing calls made to expand wildcards
    listing: list[str] = field(default_factory=list)
    #: environment name -> where it comes from (to name both sides of a collision)
    origins: dict[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per planned API call (references only, never values)."""
        return [*self.listing, *(call.describe() for call in self.calls)]

    def counts(self) -> dict[str, int]:
        """``{"awssm BatchGetSecretValue": 3, ...}``: how many calls of each kind."""
        return dict(Counter(f"{c.source} {c.operation}" for c in self.calls))

    def names_for(self, unit: UnitKey) -> list[str]:
        return [n for n, r in self.refs.items() if r.unit == unit]

    def claim(self, name: str, origin: str) -> bool:
        """Record that ``origin`` produces ``name``; a second claimant is an error naming both."""
        first = self.origins.get(name)
        if first is None:
            self.origins[name] = origin
            return True
        self.invalid[name] = ConfigError(
            f"environment name {name} comes from both {first} and {origin}")
        self.refs.pop(name, None)
        return False


def make_plan(spec: Mapping[str, str], sources: Mapping[str, SecretSource], *,
              deadline: float = 10.0) -> Plan:
    """Parse, expand wildcards (listing calls, under ``deadline``), dedupe, batch.

    Only wildcards make calls here (to list what is under their path).
    """
    plan = Plan()
    wild: dict[str, Reference] = {}
    for name, raw in spec.items():
        if not isinstance(name, str) or not name:
            plan.invalid[str(name)] = ConfigError("secret names must be non-empty strings")
            continue
        try:
            ref = parse_reference(raw, sources)
        except VaultkitError as exc:
            plan.invalid[name] = exc
            continue
        if ref.wildcard:
            wild[name] = ref
        elif plan.claim(name, f"{name} = {ref.display}"):
            plan.refs[name] = ref
    timer = Deadline(deadline)
    for name, ref in wild.items():
        _expand(plan, name, ref, sources[ref.scheme], timer)
    for ref in plan.refs.values():
        plan.units.setdefault(ref.unit, ref)
    for items in plan.per_key.values():
        for _, unit in items:
            plan.units.setdefault(unit.unit, unit)
    by_source: dict[int, tuple[SecretSource, list[Reference]]] = {}
    for ref in plan.units.values():
        if ref.unit in plan.prefetched:
            continue
        source = sources[ref.scheme]
        by_source.setdefault(id(source), (source, []))[1].append(ref)
    for source, units in by_source.values():
        plan.calls.extend(source.plan(units))
    return plan


def _expand(plan: Plan, name: str, ref: Reference, source: SecretSource,
            deadline: Deadline) -> None:
    try:
        expansion: Expansion = source.expand(ref, deadline)  # type: ignore[attr-defined]
    except VaultkitError as exc:
        plan.invalid[name] = exc
        return
    plan.listing.extend(expansion.calls)
    plan.prefetched.update(expansion.prefetched)
    prefix = prefix_of(name)
    if expansion.per_key:
        plan.per_key[name] = list(expansion.items)
        plan.expanded[name] = [f"{prefix}{env_name(path, '<KEY>')}"
                               for path, _ in expansion.items]
        return
    names = []
    for path, unit in expansion.items:
        derived = prefix + env_name(path)
        if plan.claim(derived, f"{name} = {ref.display} ({unit.display})"):
            plan.refs[derived] = unit
            names.append(derived)
    plan.expanded[name] = names


__all__ = ["Plan", "make_plan"]
