"""``awskms://<key id, ARN or alias>``: AWS KMS as the key-encryption key.

``GenerateDataKey`` (AES_256) and ``Decrypt`` with the context passed as KMS
EncryptionContext, so KMS itself refuses to unwrap under another context and
CloudTrail records the context with every call. ``Decrypt`` names the KeyId
too, so a blob from another key is refused rather than silently decrypted
under it.
"""

from __future__ import annotations

from typing import Any

from ..backends import aws
from ..config import Config
from ..errors import InvalidReferenceError
from ..secret import Secret
from .base import Context, DataKey


class AwsKmsKeyProvider:
    def __init__(self, key_id: str, *, config: Config | None = None) -> None:
        if not key_id:
            raise InvalidReferenceError("awskms:// needs a key id, ARN or alias",
                                        reference="awskms://")
        self.key_id = key_id
        self.uri = f"awskms://{key_id}"
        self._config = config or Config.load()

    def __repr__(self) -> str:
        return f"AwsKmsKeyProvider({self.uri!r})"

    @property
    def _kms(self) -> Any:
        return aws.client("kms", self._config)

    def generate_data_key(self, *, context: Context | None = None) -> DataKey:
        with aws.aws_errors("awskms", reference=self.uri):
            resp = self._kms.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context or {}))
        return DataKey(Secret(resp["Plaintext"]), resp["CiphertextBlob"], self.uri)

    def encrypt_data_key(self, plaintext: bytes, *, context: Context | None = None) -> bytes:
        with aws.aws_errors("awskms", reference=self.uri):
            resp = self._kms.encrypt(KeyId=self.key_id, Plaintext=plaintext,
                                     EncryptionContext=dict(context or {}))
        blob: bytes = resp["CiphertextBlob"]
        return blob

    def decrypt_data_key(self, wrapped: bytes, *, context: Context | None = None) -> Secret[bytes]:
        with aws.aws_errors("awskms", reference=self.uri):
            resp = self._kms.decrypt(KeyId=self.key_id, CiphertextBlob=wrapped,
                                     EncryptionContext=dict(context or {}))
        return Secret(resp["Plaintext"])

    def describe(self) -> dict[str, Any]:
        return {"provider": "awskms", "uri": self.uri, "key_id": self.key_id,
                "endpoint_url": self._config.aws.endpoint_url,
                "region": self._config.aws.region}
