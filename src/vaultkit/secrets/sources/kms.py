"""``kms:<base64 ciphertext>[?ctx.<k>=<v>...][&key=<key id>]``: a KMS ciphertext blob.

The reference carries the *ciphertext* (safe to keep in config and git) and
KMS ``Decrypt`` returns the plaintext. ``ctx.*`` options become the
EncryptionContext, which KMS checks (a wrong context is refused) and records
in CloudTrail; ``key=`` pins the KeyId so a blob under another key is refused.

Create one with ``aws kms encrypt --key-id alias/app --plaintext fileb://pw
--encryption-context app=web --query CiphertextBlob --output text``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from ...backends import aws
from ...config import Config
from ...errors import InvalidReferenceError
from ...secret import Secret
from ..refs import CONTEXT_OPTION, Reference
from ..retry import Deadline
from .base import BaseSource, Fetched


def decode_blob(unit: Reference) -> bytes:
    text = unit.locator
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidReferenceError("kms: payload is not valid base64",
                                    reference=unit.display) from exc


_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


class KmsSource(BaseSource):
    schemes: tuple[str, ...] = ("kms",)
    options = frozenset({"key", CONTEXT_OPTION})
    operation = "Decrypt"
    #: the reference holds the ciphertext: the value cannot change while a process runs
    static = True

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        blob = locator.strip()
        if not blob or not _B64.match(blob):
            raise InvalidReferenceError("kms: needs base64 ciphertext: kms:<base64>")
        return blob

    def __init__(self, *, config: Config | None = None) -> None:
        self._config = config

    @property
    def client(self) -> Any:
        return aws.client("kms", self._config)

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        kwargs: dict[str, Any] = {"CiphertextBlob": decode_blob(unit)}
        if unit.context:
            kwargs["EncryptionContext"] = dict(unit.context)
        if unit.option("key"):
            kwargs["KeyId"] = unit.option("key")
        with aws.aws_errors("kms", reference=unit.display):
            resp = self.client.decrypt(**kwargs)
        return Fetched(Secret(bytes(resp["Plaintext"])))

    def __repr__(self) -> str:
        return "KmsSource()"
