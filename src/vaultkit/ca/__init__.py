"""The offline CA: an offline root, an intermediate that issues mTLS certificates, CRLs.

>>> from vaultkit.ca import CertificateAuthority, CAHome  # doctest: +SKIP

See ``docs/ca.md`` for the design and ``ca/README.md`` for the root ceremony.

The names below are imported on first use: ``vaultkit ca issue`` imports
``vaultkit.ca.unlock`` to start the key's KDF *before* ``cryptography.x509`` and
the rest of the CA load (see :mod:`vaultkit.ca.unlock`), and importing any
submodule runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .authority import CertificateAuthority, Issued, fingerprint
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
    "fingerprint": "authority",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
