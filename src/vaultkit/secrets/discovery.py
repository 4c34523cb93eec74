"""Finding the secrets spec: ``vaultkit.toml`` from the working directory upward.

As ruff finds ``pyproject.toml``: the working directory first, then each
parent, stopping after the first directory that holds ``.git`` (the top of the
repository) or at the filesystem root. ``vaultkit --config FILE`` (or
``$VAULTKIT_CONFIG``) and ``--spec FILE`` / ``-s NAME=REF`` skip the search.

>>> find_spec_file(Path("/"))            # doctest: +SKIP
None
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

SPEC_NAME = "vaultkit.toml"


class SpecNotFoundError(ConfigError):
    """No spec: no ``--spec``/``-s``, no ``vaultkit.toml`` up to the repository root,
    or a config without a ``[secrets]`` table. ``vaultkit run`` starts nothing."""

    category = "no_spec"


def find_spec_file(start: Path | None = None) -> Path | None:
    """The nearest ``vaultkit.toml`` at or above ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / SPEC_NAME
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None  # the repository's top: a vaultkit.toml above it belongs to others
    return None


__all__ = ["SPEC_NAME", "SpecNotFoundError", "find_spec_file"]
