"""Start the intermediate key's KDF before click and ``cryptography.x509`` load.

``vaultkit ca issue`` (and ``ca renew``) spend most of their time on two things
that do not depend on each other: the 600,000-round PBKDF2 that unlocks the
intermediate key, and importing click, ``cryptography.x509`` and the CA modules.
:func:`vaultkit.cli.main` calls :func:`prestart` first, with the raw argv. When
the command line is exactly one of those commands and the passphrase is in
``VAULTKIT_CA_PASSPHRASE``, the KDF starts here, in a background thread (see
:mod:`vaultkit.ca.unlock`), and the command collects it with :func:`take`.

This is only an earlier start of work the command does anyway: the same file,
the same passphrase, the same KDF. Anything this module does not recognise
(an unknown option, ``--help``, a keyring or prompt passphrase, a loose key
file, a config it cannot read) makes it do nothing, and the command then runs
its ordinary path and reports problems in its usual order, after click has
validated the arguments.

>>> prestart(["ca", "--home", "/srv/pki", "issue", "web"])  # doctest: +SKIP
>>> take(Path("/srv/pki/private/intermediate.key"))          # doctest: +SKIP
PendingKey(path='/srv/pki/private/intermediate.key')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ca.home import CAHome
    from ..ca.unlock import PendingKey

#: The commands that sign with the intermediate key as their main job.
COMMANDS = frozenset({"issue", "renew"})

_started: dict[Path, PendingKey] = {}


def _option(args: list[str], name: str) -> tuple[str | None, list[str]] | None:
    """``--name VALUE`` / ``--name=VALUE`` at the front of ``args``: (value, rest).

    ``(None, args)`` when the front is something else; ``None`` when it is malformed.
    """
    if not args:
        return None, args
    head = args[0]
    if head == name:
        return (args[1], args[2:]) if len(args) > 1 else None
    if head.startswith(name + "="):
        return head[len(name) + 1:], args[1:]
    return None, args


def parse(argv: list[str]) -> tuple[str | None, str | None] | None:
    """``(config_path, home)`` of ``vaultkit [--config P] ca [--home H] issue|renew ...``.

    None for any other command line. The grammar is the click group's, without
    abbreviations (click has none) and without interleaving (neither group takes
    options after its subcommand name).
    """
    parsed = _option(argv, "--config")
    if parsed is None:
        return None
    config_path, rest = parsed
    if rest[:1] != ["ca"]:
        return None
    parsed = _option(rest[1:], "--home")
    if parsed is None:
        return None
    home, rest = parsed
    if rest[:1] and rest[0] in COMMANDS:
        return config_path, home
    return None


def prestart(argv: list[str]) -> None:
    """Start the intermediate key's KDF when ``argv`` is ``ca issue`` or ``ca renew``."""
    parsed = parse(argv)
    if parsed is None or not os.environ.get("VAULTKIT_CA_PASSPHRASE"):
        return
    from ..errors import VaultkitError

    try:
        key_path = _home(*parsed).intermediate_key
    except VaultkitError:
        return
    pending = unlock_with_env_passphrase(key_path)
    if pending is not None:
        _started[pending.path.absolute()] = pending


def unlock_with_env_passphrase(key_path: Path) -> PendingKey | None:
    """Start ``key_path``'s KDF with ``VAULTKIT_CA_PASSPHRASE``; None when that is unset.

    Only the environment (automation): a keyring look-up or a prompt keeps its usual
    place, after click has validated the request. None also when the key file is not
    one :mod:`vaultkit.ca.unlock` reads; the ordinary path then reports it.
    """
    from ..ca.passphrase import EnvKeyringPrompt
    from ..errors import VaultkitError

    try:
        passphrase = EnvKeyringPrompt(use_keyring=False).get("intermediate")
    except VaultkitError:
        return None
    from ..ca.unlock import start_unlock  # imports cryptography's KDF

    return start_unlock(key_path, passphrase)


def _home(config_path: str | None, home: str | None) -> CAHome:
    from ..ca.home import CAHome

    # click's resolution for `ca --home` (envvar VAULTKIT_CA_HOME; empty means unset)
    home = home or os.environ.get("VAULTKIT_CA_HOME") or None
    if home:
        return CAHome(home)
    from ..config import Config

    return CAHome.from_config(Config.load(config_path))  # which reads $VAULTKIT_CONFIG itself


def take(key_path: Path) -> PendingKey | None:
    """The KDF :func:`prestart` started for ``key_path``, if any (handed out once)."""
    return _started.pop(key_path.absolute(), None)


__all__ = ["COMMANDS", "parse", "prestart", "take", "unlock_with_env_passphrase"]
