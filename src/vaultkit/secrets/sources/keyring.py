"""``keyring://<service>/<user>``: a password from the OS keyring (``keyring`` package)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from ...errors import BackendError, InvalidReferenceError, NotFoundError, UnavailableError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Fetched


class KeyringSource(BaseSource):
    schemes: tuple[str, ...] = ("keyring",)
    operation = "get_password"

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        service, sep, user = locator.partition("/")
        if not sep or not service or not user:
            raise InvalidReferenceError("keyring:// needs <service>/<user>")
        return unquote(locator)

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError

        service, _, user = unit.locator.partition("/")
        try:
            value = keyring.get_password(service, user)
        except NoKeyringError as exc:
            raise UnavailableError("no usable OS keyring backend", source="keyring",
                                   reference=unit.display, retryable=False) from exc
        except KeyringError as exc:
            raise BackendError(f"keyring failed ({type(exc).__name__})", source="keyring",
                               reference=unit.display) from exc
        if value is None:
            raise NotFoundError("no such keyring entry", source="keyring", reference=unit.display)
        return Fetched(Secret(value))
