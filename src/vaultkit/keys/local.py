"""``local://<name>``: a 256-bit master key in the OS keyring, or in a 0600 key file.

Where the key lives is set by ``[local_keys] store``:

* ``keyring``: the OS keyring (service ``vaultkit``, user ``local-key:<name>``);
* ``file``: ``<config dir>/keys/<name>.key``, mode 0600, refused if group- or world-readable;
* ``auto`` (default): the keyring when a real backend is available, else the file.

``vaultkit keys init-local [NAME]`` creates the key; using a missing key is a
:class:`NotFoundError` that says how to create it.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError, NotFoundError
from ..files import read_private, write_private
from .base import DATA_KEY_BYTES, AesGcmWrapper

KEYRING_SERVICE = "vaultkit"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _keyring_username(name: str) -> str:
    return f"local-key:{name}"


def keyring_usable() -> bool:
    """True when ``keyring`` has a real backend (not the fail or null backend)."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    try:
        kr = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken backend means "not usable"
        return False
    if isinstance(kr, fail.Keyring) or type(kr).__module__.startswith("keyring.backends.null"):
        return False
    backends = getattr(kr, "backends", None)
    return not (backends is not None and not backends)


def _validate(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError("local key names use letters, digits, '.', '_' and '-' (max 64)",
                          reference=f"local://{name}")
    return name


class LocalKeyStore:
    """Finds, creates and reads ``local://`` master keys according to the config."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.load()
        store = self.config.local_keys.store
        if store not in ("auto", "keyring", "file"):
            raise ConfigError("local_keys.store must be auto, keyring or file")
        self.store = store

    def key_path(self, name: str) -> Path:
        return self.config.local_keys_dir / f"{_validate(name)}.key"

    def _use_keyring(self) -> bool:
        return self.store == "keyring" or (self.store == "auto" and keyring_usable())

    def location(self, name: str) -> str:
        """Where ``name`` lives (or would live): ``keyring`` or the file path."""
        return "keyring" if self._use_keyring() else str(self.key_path(name))

    def exists(self, name: str) -> bool:
        if self._use_keyring():
            return self._keyring_get(name) is not None
        return self.key_path(name).exists()

    def create(self, name: str, *, overwrite: bool = False) -> str:
        """Create a new random master key; refuses to replace one unless ``overwrite``."""
        _validate(name)
        if self.exists(name) and not overwrite:
            raise ConfigError("local key already exists; refusing to overwrite it",
                              reference=f"local://{name}")
        key = os.urandom(DATA_KEY_BYTES)
        if self._use_keyring():
            import keyring

            keyring.set_password(KEYRING_SERVICE, _keyring_username(name),
                                 base64.b64encode(key).decode())
            return "keyring"
        path = self.key_path(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, base64.b64encode(key) + b"\n")
        return str(path)

    def _keyring_get(self, name: str) -> str | None:
        import keyring

        value: str | None = keyring.get_password(KEYRING_SERVICE, _keyring_username(name))
        return value

    def load(self, name: str) -> bytes:
        _validate(name)
        if self._use_keyring():
            encoded = self._keyring_get(name)
            if encoded is None:
                raise NotFoundError(
                    "local key not in the keyring; create it with: vaultkit keys init-local "
                    + name, source="local", reference=f"local://{name}")
            raw = encoded.encode()
        else:
            path = self.key_path(name)
            if not path.exists():
                raise NotFoundError(
                    f"local key file missing; create it with: vaultkit keys init-local {name}",
                    source="local", reference=str(path))
            raw = read_private(path).strip()
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise ConfigError("local key is not valid base64", reference=f"local://{name}") from exc
        if len(key) != DATA_KEY_BYTES:
            raise ConfigError("local key must be 32 bytes", reference=f"local://{name}")
        return key


class LocalKeyProvider(AesGcmWrapper):
    """A KEK from the OS keyring or a 0600 key file (``local://<name>``)."""

    def __init__(self, name: str = "default", *, config: Config | None = None) -> None:
        self.name = name
        self._store = LocalKeyStore(config)
        super().__init__(f"local://{name}", self._store.load(name))

    def describe(self) -> dict[str, Any]:
        return {"provider": "local", "uri": self.uri, "store": self._store.location(self.name)}
