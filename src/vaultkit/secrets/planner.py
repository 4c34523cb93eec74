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
from .sources.base import Call, SecretSource, UnitKey


@dataclass
class Plan:
    #: name -> parsed reference (only the valid ones)
    refs: dict[str, Reference] = field(default_factory=dict)
    #: name -> why the reference is invalid (nothing is fetched for these names)
    invalid: dict[str, VaultkitError] = field(default_factory=dict)
    #: unique fetch units, in first-seen order
    units: dict[UnitKey, Reference] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per planned API call (references only, never values)."""
        return [call.describe() for call in self.calls]

    def counts(self) -> dict[str, int]:
        """``{"awssm BatchGetSecretValue": 3, ...}``: how many calls of each kind."""
        return dict(Counter(f"{c.source} {c.operation}" for c in self.calls))

    def names_for(self, unit: UnitKey) -> list[str]:
        return [n for n, r in self.refs.items() if r.unit == unit]


def make_plan(spec: Mapping[str, str], sources: Mapping[str, SecretSource]) -> Plan:
    plan = Plan()
    for name, raw in spec.items():
        if not isinstance(name, str) or not name:
            plan.invalid[str(name)] = ConfigError("secret names must be non-empty strings")
            continue
        try:
            ref = parse_reference(raw)
        except VaultkitError as exc:
            plan.invalid[name] = exc
            continue
        if ref.scheme not in sources:
            plan.invalid[name] = ConfigError(f"no source configured for {ref.scheme}://",
                                             reference=ref.display)
            continue
        plan.refs[name] = ref
        plan.units.setdefault(ref.unit, ref)
    by_source: dict[int, tuple[SecretSource, list[Reference]]] = {}
    for ref in plan.units.values():
        source = sources[ref.scheme]
        by_source.setdefault(id(source), (source, []))[1].append(ref)
    for source, units in by_source.values():
        plan.calls.extend(source.plan(units))
    return plan


__all__ = ["Plan", "make_plan"]
