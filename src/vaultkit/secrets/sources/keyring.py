"""``keyring://<service>/<user>``: a password from the OS keyring (``keyring`` package)."""

from __future__ import annotations

from ...errors import BackendError, NotFoundError, UnavailableError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Fetched


class KeyringSource(BaseSource):
    schemes: tuple[str, ...] = ("keyring",)
    operation = "get_password"

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
