"""``transit://<mount>/<key>``: Vault/OpenBao transit as the key-encryption key.

Data keys are generated locally (``os.urandom``) and wrapped with
``<mount>/encrypt/<key>``; the canonical context is sent as
``associated_data``, so transit refuses to unwrap under another context. The
wrapped form is transit's own ``vault:vN:...`` string, which keeps working
across transit key rotation (``min_decryption_version`` permitting).
"""

from __future__ import annotations

import base64
from typing import Any

from ..backends.vault import VaultClient, vault_client
from ..config import Config
from ..errors import InvalidReferenceError, KeyProviderError
from ..secret import Secret
from .base import Context, GeneratingProvider, canonical_context


class TransitKeyProvider(GeneratingProvider):
    def __init__(self, mount: str, key: str, *, config: Config | None = None,
                 client: VaultClient | None = None) -> None:
        if not mount or not key:
            raise InvalidReferenceError("transit:// needs <mount>/<key>",
                                        reference=f"transit://{mount}/{key}")
        self.mount = mount.strip("/")
        self.key = key
        self.uri = f"transit://{self.mount}/{key}"
        self._client = client or vault_client(config)

    def __repr__(self) -> str:
        return f"TransitKeyProvider({self.uri!r})"

    def _aad(self, context: Context | None) -> str:
        return base64.b64encode(canonical_context(context)).decode()

    def encrypt_data_key(self, plaintext: bytes, *, context: Context | None = None) -> bytes:
        body = self._client.write(
            f"{self.mount}/encrypt/{self.key}",
            {"plaintext": base64.b64encode(plaintext).decode(),
             "associated_data": self._aad(context)},
            reference=self.uri,
        )
        ciphertext = (body.get("data") or {}).get("ciphertext")
        if not isinstance(ciphertext, str):
            raise KeyProviderError("transit returned no ciphertext", source="transit",
                                   reference=self.uri)
        return ciphertext.encode()

    def decrypt_data_key(self, wrapped: bytes, *, context: Context | None = None) -> Secret[bytes]:
        from ..errors import ConfigError

        try:
            body = self._client.write(
                f"{self.mount}/decrypt/{self.key}",
                {"ciphertext": wrapped.decode("ascii"), "associated_data": self._aad(context)},
                reference=self.uri,
            )
        except (ConfigError, UnicodeDecodeError) as exc:
            # Transit answers 400 for a wrong context, a tampered blob or another key's blob.
            raise KeyProviderError(
                "cannot unwrap data key: wrong transit key, wrong context or tampered blob",
                source="transit", reference=self.uri) from exc
        plaintext = (body.get("data") or {}).get("plaintext")
        if not isinstance(plaintext, str):
            raise KeyProviderError("transit returned no plaintext", source="transit",
                                   reference=self.uri)
        return Secret(base64.b64decode(plaintext))

    def describe(self) -> dict[str, Any]:
        return {"provider": "transit", "uri": self.uri, "vault_addr": self._client.address}
