"""``env://NAME``: a value from this process's environment (or an injected mapping)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ...errors import InvalidReferenceError, NotFoundError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Fetched

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvSource(BaseSource):
    """Reads ``env://NAME``. ``EnvSource({"A": "x"})`` reads a given mapping instead of ``os.environ``.

    >>> EnvSource({"DB_URL": "postgres://"}).fetch(
    ...     __import__("vaultkit.secrets.refs", fromlist=["x"]).parse_reference("env://DB_URL"),
    ...     None).document
    Secret('********')
    """

    schemes: tuple[str, ...] = ("env",)
    operation = "getenv"
    #: the values come from this process's own environment: nothing to re-read later
    static = True

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        if not _ENV_NAME.match(locator):
            raise InvalidReferenceError("env:// needs a variable name: env://NAME")
        return locator

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(unit.locator)
        if value is None:
            raise NotFoundError("environment variable is not set", source="env",
                                reference=unit.display)
        return Fetched(Secret(value))
