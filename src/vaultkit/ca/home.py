"""The CA home: one directory with stable, documented paths.

=============================  =======================================================
``HOME/profiles.toml``         key types, lifetimes, EKUs, name constraints (committed)
``HOME/root.pem``              the root certificate (public; its key is on offline media)
``HOME/intermediate.pem``      the current intermediate certificate
``HOME/intermediate.csr``      the intermediate's CSR, waiting for the offline signing
``HOME/private/intermediate.key``  the intermediate key, encrypted, 0600 (never committed)
``HOME/crl/root.crl``          the root's CRL (PEM; ``.der`` next to it for HTTP CDPs)
``HOME/crl/intermediate.crl``  the intermediate's CRL (PEM; ``.der`` too)
``HOME/issued/``               default output directory of ``vaultkit ca issue``
``HOME/retired/``              revoked intermediates, kept for the record
``HOME/inventory.sqlite``      every certificate and event (WAL; never committed)
``HOME/.lock``                 the issuance lock
=============================  =======================================================

The home is ``--home``, else ``[ca] home`` in the config, else
``$VAULTKIT_HOME/ca`` (``~/.config/vaultkit/ca``).

>>> CAHome("/tmp/pki").intermediate_crl
PosixPath('/tmp/pki/crl/intermediate.crl')
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .. import files
from ..errors import ConfigError, InsecureFileError

if TYPE_CHECKING:
    from ..config import Config


class CAHome:
    """The paths of one CA home; immutable, equal when the directory is.

    Directories: the home 0700 when vaultkit creates it, ``private/`` and ``retired/``
    0700, ``crl/`` and ``issued/`` 0755, whatever the umask; a home others can write
    to is refused (:meth:`check`).
    """

    __slots__ = ("_root_dir",)

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self._root_dir = Path(root_dir).expanduser().absolute()

    @property
    def root_dir(self) -> Path:
        return self._root_dir

    def __repr__(self) -> str:
        return f"CAHome(root_dir={self._root_dir!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CAHome) and other._root_dir == self._root_dir

    def __hash__(self) -> int:
        return hash(self._root_dir)

    @classmethod
    def from_config(cls, config: Config | None = None, home: str | os.PathLike[str] | None = None
                    ) -> CAHome:
        from ..config import default_config_dir

        if home:
            return cls(home)
        configured = (config.section("ca").get("home") if config else None)
        if configured:
            return cls(str(configured))
        return cls(default_config_dir() / "ca")

    @property
    def profiles(self) -> Path:
        return self.root_dir / "profiles.toml"

    @property
    def root_cert(self) -> Path:
        return self.root_dir / "root.pem"

    @property
    def intermediate_cert(self) -> Path:
        return self.root_dir / "intermediate.pem"

    @property
    def intermediate_csr(self) -> Path:
        return self.root_dir / "intermediate.csr"

    @property
    def private_dir(self) -> Path:
        return self.root_dir / "private"

    @property
    def intermediate_key(self) -> Path:
        return self.private_dir / "intermediate.key"

    @property
    def crl_dir(self) -> Path:
        return self.root_dir / "crl"

    @property
    def root_crl(self) -> Path:
        return self.crl_dir / "root.crl"

    @property
    def intermediate_crl(self) -> Path:
        return self.crl_dir / "intermediate.crl"

    @property
    def issued_dir(self) -> Path:
        return self.root_dir / "issued"

    @property
    def retired_dir(self) -> Path:
        return self.root_dir / "retired"

    @property
    def inventory(self) -> Path:
        return self.root_dir / "inventory.sqlite"

    @property
    def lock(self) -> Path:
        return self.root_dir / ".lock"

    def ensure(self) -> None:
        """Create the home (0700 when new), ``private/`` (always 0700: it holds the key) and
        ``crl/`` (0755), with explicit modes whatever the umask; then :meth:`check` it."""
        make_dir(self.root_dir, 0o700)
        make_dir(self.private_dir, 0o700)
        self.private_dir.chmod(0o700)
        make_dir(self.crl_dir, 0o755)
        self.check()

    def check(self) -> None:
        """Refuse a home that others could write to, or a ``private/`` others can enter.

        Whoever can write to the home can swap ``intermediate.pem`` or the inventory; the
        same rule as for key files, with the ``chmod`` that fixes it.
        """
        rules = [(self.root_dir, 0o022, "go-w"), (self.private_dir, 0o077, "700"),
                 (self.crl_dir, 0o022, "go-w"), (self.issued_dir, 0o022, "go-w"),
                 (self.retired_dir, 0o077, "700")]
        for path, forbidden, fix in rules:
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ConfigError(f"cannot stat {path}: {exc.strerror}") from exc
            if mode & forbidden:
                what = "writable by group or others" if forbidden == 0o022 else (
                    "open to group or others")
                raise InsecureFileError(f"CA directory {path} has mode {mode:04o}; it must not "
                                        f"be {what} (run: chmod {fix} {path})", source="ca",
                                        reference=str(path))


def make_dir(path: Path, mode: int) -> Path:
    """``mkdir -p`` where every directory it creates gets ``mode`` exactly, whatever the umask
    (``mkdir(mode=)`` is masked by it: under ``umask 000``, 0777). Existing ones are kept."""
    return files.make_parents(path, mode, exact=True)


#: Written into a new CA home, and committed as ``ca/.gitignore``: keys, the inventory,
#: issued leaves and the lock never go into git. Certificates, CSRs, CRLs, profiles and
#: the runbook may.
GITIGNORE = """\
# vaultkit CA home: never commit keys, the inventory or issued leaves.
*.key
*.p12
*.pfx
private/
issued/
retired/
inventory.sqlite
inventory.sqlite-*
audit.jsonl
.lock
"""
__all__ = ["GITIGNORE", "CAHome", "make_dir"]
