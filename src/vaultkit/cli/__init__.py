"""The ``vaultkit`` command: a thin, lazily loaded layer over the library.

Each command group lives in its own module and is imported only when it is
invoked, so ``vaultkit --help`` stays fast and imports no SDK. The click group
itself is :data:`vaultkit.cli.root.cli` (also importable as ``vaultkit.cli.cli``);
:func:`main` is the console script.

Exit codes are documented in ``docs/cli.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .root import COMMANDS, LazyGroup, cli


def main(argv: list[str] | None = None) -> Any:
    """The console script. It ends the process: click exits with the command's code."""
    from .root import cli

    return cli.main(args=argv, prog_name="vaultkit")


__getattr__, __dir__ = _lazy_exports(__name__, {n: "root" for n in ("COMMANDS", "LazyGroup", "cli")},
                                     globals())


__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]
