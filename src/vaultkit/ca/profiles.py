"""Certificate profiles: key types, lifetimes, EKUs and name constraints (``profiles.toml``).

The built-in :data:`DEFAULT_PROFILES_TOML` is the same text as the project's
committed ``ca/profiles.toml`` (a test keeps them equal). A CA home's own
``profiles.toml`` is read over these defaults, table by table.

>>> p = Profiles.default()
>>> p.leaf("server").ekus, p.leaf("server").days
(('serverAuth',), 90)
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .keys import KEY_TYPES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

#: Leaf lifetimes are short by design: 90 days default (issue 5: "90 days or less").
MAX_LEAF_DEFAULT_DAYS = 90
EKU_NAMES = ("serverAuth", "clientAuth")

#: The text of the committed ``ca/profiles.toml`` (kept equal by a unit test); embedded so an
#: installed wheel needs no data files.
DEFAULT_PROFILES_TOML = """\
# vaultkit CA profiles: key types, lifetimes, EKUs and name constraints.
#
# This file lives in the CA home (HOME/profiles.toml); `vaultkit ca init` copies the
# built-in defaults here when the home has none. It holds no secrets and is committed.
# Key types: ec-p256, ec-p384, rsa-3072, rsa-4096, ed25519.
# EKUs: serverAuth, clientAuth.

[root]
key_type = "ec-p384"        # ECDSA P-384 (issue 5 default)
days = 3650                 # 10 years
path_length = 1             # root -> intermediate -> leaf, nothing deeper
crl_days = 180              # the root is offline: its CRL is re-signed at each ceremony

[intermediate]
key_type = "ec-p384"
days = 1825                 # 5 years
path_length = 0             # the intermediate may sign leaves only
crl_days = 7                # nextUpdate of HOME/crl/intermediate.crl
# Name constraints put on the intermediate when `intermediate create` gives none.
# Leaving both empty issues an unconstrained intermediate.
permit_dns = []             # e.g. ["svc.internal"]
permit_ip = []              # e.g. ["10.0.0.0/8", "127.0.0.0/8"]

[defaults]
# Leaves are short-lived; Go peers (OpenBao, Consul, ...) do not check CRLs at all.
allow_single_label = false  # refuse SANs such as DNS:localhost (RFC 5280 wants FQDNs)
crl_url = ""                # e.g. "http://pki.internal/intermediate.crl": adds a CDP to leaves
root_crl_url = ""           # adds a CDP pointing at the root CRL to the intermediate

[profiles.server]
key_type = "ec-p256"
days = 90
max_days = 397
ekus = ["serverAuth"]

[profiles.client]
key_type = "ec-p256"
days = 90
max_days = 397
ekus = ["clientAuth"]

[profiles.both]
key_type = "ec-p256"
days = 90
max_days = 397
ekus = ["serverAuth", "clientAuth"]
"""


@dataclass(frozen=True)
class CAProfile:
    """The root's or the intermediate's settings."""

    key_type: str
    days: int
    path_length: int
    crl_days: int
    permit_dns: tuple[str, ...] = ()
    permit_ip: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeafProfile:
    """A leaf profile: ``server``, ``client`` or ``both`` (or your own)."""

    name: str
    key_type: str
    days: int
    max_days: int
    ekus: tuple[str, ...]


@dataclass(frozen=True)
class Profiles:
    root: CAProfile
    intermediate: CAProfile
    leaves: Mapping[str, LeafProfile]
    allow_single_label: bool = False
    crl_url: str | None = None
    root_crl_url: str | None = None
    source: str | None = field(default=None, compare=False)

    def leaf(self, name: str) -> LeafProfile:
        try:
            return self.leaves[name]
        except KeyError:
            raise ConfigError(
                f"unknown profile {name!r}; choose one of {', '.join(sorted(self.leaves))}"
            ) from None

    @classmethod
    def default(cls) -> Profiles:
        return cls.parse(tomllib.loads(DEFAULT_PROFILES_TOML), source="built-in")

    @classmethod
    def load(cls, path: str | Path | None) -> Profiles:
        """Built-in defaults, overlaid with ``path`` when it exists."""
        base = tomllib.loads(DEFAULT_PROFILES_TOML)
        if path is None or not Path(path).is_file():
            return cls.parse(base, source="built-in")
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read profiles: {exc}", reference=str(path)) from exc
        for table in ("root", "intermediate", "defaults"):
            if table in data:
                base[table] = {**base.get(table, {}), **_table(data, table, str(path))}
        if "profiles" in data:
            base["profiles"] = {**base["profiles"], **_table(data, "profiles", str(path))}
        return cls.parse(base, source=str(path))

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, source: str | None = None) -> Profiles:
        where = source or "profiles"
        defaults = _table(data, "defaults", where)
        leaves = {}
        for name, table in _table(data, "profiles", where).items():
            if not isinstance(table, dict):
                raise ConfigError(f"[profiles.{name}] must be a table", reference=where)
            leaves[name] = _leaf(name, table, where)
        if not leaves:
            raise ConfigError("no leaf profiles defined", reference=where)
        return cls(
            root=_ca(_table(data, "root", where), "root", where),
            intermediate=_ca(_table(data, "intermediate", where), "intermediate", where),
            leaves=leaves,
            allow_single_label=bool(defaults.get("allow_single_label", False)),
            crl_url=str(defaults.get("crl_url") or "") or None,
            root_crl_url=str(defaults.get("root_crl_url") or "") or None,
            source=source,
        )


def _table(data: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table", reference=where)
    return value


def _key_type(value: Any, where: str) -> str:
    if value not in KEY_TYPES:
        raise ConfigError(f"key_type {value!r} is not one of {', '.join(KEY_TYPES)}",
                          reference=where)
    return str(value)


def _positive(table: Mapping[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer", reference=where)
    return value


def _ca(table: Mapping[str, Any], name: str, where: str) -> CAProfile:
    path_length = table.get("path_length")
    if not isinstance(path_length, int) or path_length < 0:
        raise ConfigError(f"[{name}] path_length must be >= 0", reference=where)
    permit_ip = tuple(str(v) for v in table.get("permit_ip", []))
    for net in permit_ip:
        try:
            ipaddress.ip_network(net)
        except ValueError as exc:
            raise ConfigError(f"[{name}] permit_ip {net!r} is not a CIDR", reference=where) from exc
    return CAProfile(
        key_type=_key_type(table.get("key_type"), where),
        days=_positive(table, "days", where),
        path_length=path_length,
        crl_days=_positive(table, "crl_days", where),
        permit_dns=tuple(str(v) for v in table.get("permit_dns", [])),
        permit_ip=permit_ip,
    )


def _leaf(name: str, table: Mapping[str, Any], where: str) -> LeafProfile:
    ekus = tuple(str(e) for e in table.get("ekus", []))
    if not ekus or any(e not in EKU_NAMES for e in ekus):
        raise ConfigError(f"[profiles.{name}] ekus must be a non-empty subset of "
                          f"{', '.join(EKU_NAMES)}", reference=where)
    days = _positive(table, "days", where)
    max_days = _positive(table, "max_days", where) if "max_days" in table else days
    if days > MAX_LEAF_DEFAULT_DAYS:
        raise ConfigError(f"[profiles.{name}] days={days}: a leaf's default lifetime must be "
                          f"{MAX_LEAF_DEFAULT_DAYS} days or less", reference=where)
    if max_days < days:
        raise ConfigError(f"[profiles.{name}] max_days is below days", reference=where)
    return LeafProfile(name=name, key_type=_key_type(table.get("key_type"), where), days=days,
                       max_days=max_days, ekus=ekus)


__all__ = ["CAProfile", "DEFAULT_PROFILES_TOML", "LeafProfile", "Profiles"]
