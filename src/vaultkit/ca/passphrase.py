"""Where CA passphrases come from: an environment variable, the OS keyring, or a hidden prompt.

Never argv: a command line is visible to every user through ``ps`` and lands in
shell history. Order, for each role:

=================  ============================  ====================================
role               environment variable          keyring (service ``vaultkit-ca``)
=================  ============================  ====================================
``root``           ``VAULTKIT_ROOT_PASSPHRASE``  username ``root``
``intermediate``   ``VAULTKIT_CA_PASSPHRASE``    username ``intermediate``
``leaf``           ``VAULTKIT_LEAF_PASSPHRASE``  username ``leaf`` (``issue --encrypt-key``)
``p12``            ``VAULTKIT_P12_PASSPHRASE``   username ``p12`` (``export --p12``)
=================  ============================  ====================================

then the ``prompt`` callable (the CLI passes a hidden ``click.prompt``).

>>> StaticPassphrases({"root": "correct horse battery"}).get("root")
Secret('********')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Protocol

from ..errors import ConfigError
from ..secret import Secret

ENV_VARS = {
    "root": "VAULTKIT_ROOT_PASSPHRASE",
    "intermediate": "VAULTKIT_CA_PASSPHRASE",
    "leaf": "VAULTKIT_LEAF_PASSPHRASE",
    "p12": "VAULTKIT_P12_PASSPHRASE",
}
KEYRING_SERVICE = "vaultkit-ca"
#: New CA keys need at least this many characters: the KDF slows guessing, it cannot
#: rescue a short passphrase.
MIN_LENGTH = 12

Prompt = Callable[[str, bool], str]


class Passphrases(Protocol):
    def get(self, role: str, *, new: bool = False) -> Secret[bytes]:
        """The passphrase for ``role``; ``new`` means it will protect a new key."""


def _checked(value: str, role: str, new: bool) -> Secret[bytes]:
    if new and len(value) < MIN_LENGTH:
        raise ConfigError(f"the {role} passphrase must be at least {MIN_LENGTH} characters")
    if not value:
        raise ConfigError(f"an empty {role} passphrase was given")
    return Secret(value.encode("utf-8"), label=f"{role} passphrase")


class EnvKeyringPrompt:
    """The default source: environment, then keyring, then ``prompt`` (if any)."""

    def __init__(self, prompt: Prompt | None = None, *, use_keyring: bool = True,
                 environ: Mapping[str, str] | None = None) -> None:
        self.prompt = prompt
        self.use_keyring = use_keyring
        self.environ = os.environ if environ is None else environ

    def get(self, role: str, *, new: bool = False) -> Secret[bytes]:
        var = ENV_VARS.get(role)
        if var is None:
            raise ConfigError(f"unknown passphrase role {role!r}")
        if value := self.environ.get(var):
            return _checked(value, role, new)
        if self.use_keyring and (value := _from_keyring(role)):
            return _checked(value, role, new)
        if self.prompt is not None:
            return _checked(self.prompt(f"{role} key passphrase", new), role, new)
        raise ConfigError(f"no {role} passphrase: set {var}, store it in the OS keyring "
                          f"(service {KEYRING_SERVICE!r}, user {role!r}), or run interactively")


class StaticPassphrases:
    """Fixed passphrases (tests, and programs that fetched them elsewhere)."""

    def __init__(self, values: Mapping[str, str | Secret[str]]) -> None:
        self._values = {k: v if isinstance(v, Secret) else Secret(v) for k, v in values.items()}

    def get(self, role: str, *, new: bool = False) -> Secret[bytes]:
        if role not in self._values:
            raise ConfigError(f"no {role} passphrase was provided")
        return _checked(self._values[role].reveal(), role, new)

    def __repr__(self) -> str:
        return f"StaticPassphrases(roles={sorted(self._values)})"


def _from_keyring(role: str) -> str | None:
    try:
        import keyring
        import keyring.errors
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, role)
    except (keyring.errors.KeyringError, RuntimeError):  # no usable backend: fall through
        return None
    return str(value) if value else None


__all__ = ["ENV_VARS", "EnvKeyringPrompt", "MIN_LENGTH", "Passphrases", "StaticPassphrases"]
