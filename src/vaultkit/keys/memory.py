"""``memory://<name>``: a process-local master key, for tests and demos.

The same URI gives the same provider for the life of the process, so data
wrapped through one ``get_key_provider("memory://x")`` call unwraps through
another. Nothing is persisted.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .base import DATA_KEY_BYTES, AesGcmWrapper

_lock = threading.Lock()
_providers: dict[str, MemoryKeyProvider] = {}


class MemoryKeyProvider(AesGcmWrapper):
    """An in-memory KEK. ``MemoryKeyProvider("name")`` or ``get_key_provider("memory://name")``."""

    def __init__(self, name: str = "default", master_key: bytes | None = None) -> None:
        super().__init__(f"memory://{name}", master_key or os.urandom(DATA_KEY_BYTES))
        self.name = name

    @classmethod
    def named(cls, name: str) -> MemoryKeyProvider:
        with _lock:
            provider = _providers.get(name)
            if provider is None:
                provider = _providers[name] = cls(name)
            return provider

    def describe(self) -> dict[str, Any]:
        return {"provider": "memory", "uri": self.uri, "persistent": False}
