"""``file://<path>#key``: a value from a vaultkit-encrypted local file (see ``envfile``).

``file:///abs/path.json#db/password`` or ``file://relative.toml#api_token``
(relative to the working directory). The file is decrypted once per load and
the fragment selects a key; ``a/b`` walks nested tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import unquote

from ...config import Config
from ...errors import InvalidReferenceError
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Fetched


class EncryptedFileSource(BaseSource):
    schemes: tuple[str, ...] = ("file",)
    operation = "decrypt-file"

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        if not locator:
            raise InvalidReferenceError(
                "file:// needs a path: file:///abs/path.json#key or file://rel.json#key")
        return unquote(locator)

    def __init__(self, *, config: Config | None = None) -> None:
        self._config = config

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        # Imported here: envfile (tomllib, hmac, tempfile, ...) costs ~20 ms of every cold
        # start, and only loads with a file:// reference need it.
        from .. import envfile

        doc = envfile.read_document(unit.locator)
        plain = envfile.decrypt_document(doc, config=self._config)
        return Fetched(Secret(json.dumps(plain)), structured=True)

    def __repr__(self) -> str:
        return "EncryptedFileSource()"
