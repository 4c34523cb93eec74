"""The offline CA: an offline root, an intermediate that issues mTLS certificates, CRLs.

>>> from vaultkit.ca import CertificateAuthority, CAHome  # doctest: +SKIP

See ``docs/ca.md`` for the design and ``ca/README.md`` for the root ceremony.
"""

from __future__ import annotations

from .authority import CertificateAuthority, Issued, fingerprint
from .home import CAHome
from .inventory import CertRecord, Inventory
from .keys import DEFAULT_KDF_ROUNDS, KEY_TYPES
from .passphrase import EnvKeyringPrompt, Passphrases, StaticPassphrases
from .profiles import Profiles

__all__ = [
    "CAHome",
    "CertRecord",
    "CertificateAuthority",
    "DEFAULT_KDF_ROUNDS",
    "EnvKeyringPrompt",
    "Inventory",
    "Issued",
    "KEY_TYPES",
    "Passphrases",
    "Profiles",
    "StaticPassphrases",
    "fingerprint",
]
