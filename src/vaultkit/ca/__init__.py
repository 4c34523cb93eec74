"""The offline CA: an offline root, an intermediate that issues mTLS certificates, CRLs.

>>> from vaultkit.ca import CertificateAuthority, CAHome  # doctest: +SKIP

See ``docs/ca.md`` for the design and ``ca/README.md`` for the root ceremony.

The names below are imported on first use: ``vaultkit ca`` commands start the
intermediate key's KDF (:mod:`vaultkit.ca.pbes2`) before ``cryptography.x509`` and
the rest of the CA load, and importing any submodule runs this file first.
The kill switch and bulk renewal are :mod:`vaultkit.ca.rotation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .authority import CertificateAuthority, Issued
    from .certs import fingerprint
    from .home import CAHome
    from .inventory import CertRecord, Inventory
    from .keys import DEFAULT_KDF_ROUNDS, KEY_TYPES
    from .passphrase import EnvKeyringPrompt, Passphrases, StaticPassphrases
    from .profiles import Profiles

#: public name -> the submodule that defines it
_LAZY = {
    "CAHome": "home",
    "CertRecord": "inventory",
    "CertificateAuthority": "authority",
    "DEFAULT_KDF_ROUNDS": "keys",
    "EnvKeyringPrompt": "passphrase",
    "Inventory": "inventory",
    "Issued": "authority",
    "KEY_TYPES": "keys",
    "Passphrases": "passphrase",
    "Profiles": "profiles",
    "StaticPassphrases": "passphrase",
    "fingerprint": "certs",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())


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
