"""A whole path as one reference: ``vault://secret/app/*``, ``ssm:///prod/app/**``, ``awssm://prod/*``.

``/*`` takes what is directly under the path, ``/**`` everything below it.
A source that supports wildcards implements ``expand(ref, deadline) ->
Expansion``, listing what is there (Vault ``LIST``, SSM ``GetParametersByPath``
paged, Secrets Manager ``ListSecrets`` with a name filter); the planner then
treats each secret found as an ordinary reference, batched as usual.

Environment names, the one documented rule (what chamber and envconsul do):

* the secret's path below the wildcard, then (Vault: every key of the secret)
  the key, joined with ``_``;
* upper case, and every character other than ``A-Z``, ``0-9`` and ``_``
  becomes ``_`` (a leading digit gets a ``_`` in front);
* the spec's name is a prefix if it ends with ``_`` (``APP_ = "ssm:///prod/app/*"``
  gives ``APP_DB_PASSWORD``), otherwise it only labels the entry;
* two references producing one name is an error naming both.

>>> env_name("team/db-main", "password")
'TEAM_DB_MAIN_PASSWORD'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .refs import Reference
from .sources.base import Fetched, UnitKey

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


@dataclass
class Expansion:
    """What a wildcard reference expanded to."""

    #: (path below the wildcard, the reference that reads it) per secret found
    items: list[tuple[str, Reference]] = field(default_factory=list)
    #: True when every key of each secret becomes a name (Vault KV)
    per_key: bool = False
    #: values read while listing (``GetParametersByPath`` returns them): not fetched again
    prefetched: dict[UnitKey, Fetched] = field(default_factory=dict)
    #: the listing calls made, for ``vaultkit secrets plan``
    calls: list[str] = field(default_factory=list)


def env_name(*parts: str) -> str:
    """Upper case; every character but ``A-Z0-9_`` becomes ``_``; no leading digit."""
    text = "_".join(p.strip("/") for p in parts if p and p.strip("/"))
    name = _NOT_ENV.sub("_", text.upper())
    return "_" + name if name[:1].isdigit() else name


def prefix_of(spec_name: str) -> str:
    return spec_name if spec_name.endswith("_") else ""


def concrete(ref: Reference, locator: str, raw: str) -> Reference:
    """``ref`` (a wildcard) narrowed to one secret, keeping its options."""
    return replace(ref, locator=locator, raw=raw)


def relative(base: str, name: str) -> str:
    """``name`` below ``base`` (``/prod/app`` + ``/prod/app/db/pw`` -> ``db/pw``)."""
    stem = base.rstrip("/")
    if stem and name.startswith(stem + "/"):
        return name[len(stem) + 1:]
    return name.lstrip("/") if not stem else name


__all__ = ["Expansion", "concrete", "env_name", "prefix_of", "relative"]
