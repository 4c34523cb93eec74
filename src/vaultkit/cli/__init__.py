"""The ``vaultkit`` command: a thin, lazily loaded layer over the library.

Each command group lives in its own module and is imported only when it is
invoked, so ``vaultkit --help`` stays fast and imports no SDK. The click group
itself is :data:`vaultkit.cli.root.cli` (also importable as ``vaultkit.cli.cli``);
:func:`main`, the console script, first lets :mod:`.prestart` start a CA key's KDF,
before click and the CA modules load.

Exit codes (documented in ``docs/cli.md``):

== ===============================================================
0  success
1  the operation failed (a check failed, a secret could not load)
2  usage error (bad flags or arguments; click's own code)
3  configuration error (bad config, malformed reference)
4  backend error (not found, access denied, unavailable, auth)
5  cryptographic failure (decryption, key unwrap, insecure key file)
== ===============================================================
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .root import COMMANDS, LazyGroup, cli

#: True while :func:`main` holds the cyclic GC off for a command's start-up.
_gc_paused = False


def main(argv: list[str] | None = None) -> Any:
    """The console script. It ends the process: click exits with the command's code.

    The cyclic garbage collector is off while the command starts: start-up imports
    allocate some 100,000 long-lived objects that its passes walk again and again
    and never free (about 15 ms of ``vaultkit ca issue``). Commands that do
    unbounded work (archives, re-encryption, ``run``) turn it back on before they
    run; the CA's commands are short and bounded and keep it off
    (:data:`vaultkit.cli.root.BOUNDED`). At exit, :func:`gc.freeze` spares the
    interpreter's final collections over the same objects (another ~15 ms): by then
    every file vaultkit wrote is closed and fsynced, and no output depends on a
    finalizer.
    """
    global _gc_paused
    was_enabled = gc.isenabled()
    gc.disable()
    _gc_paused = was_enabled
    try:
        from . import prestart

        prestart.prestart(sys.argv[1:] if argv is None else argv)
        from .root import cli

        return cli.main(args=argv, prog_name="vaultkit")
    finally:
        gc.freeze()
        resume_gc()


def resume_gc() -> None:
    """Turn the cyclic garbage collector back on, if :func:`main` turned it off."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.enable()


__getattr__, __dir__ = _lazy_exports(__name__, {n: "root" for n in ("COMMANDS", "LazyGroup", "cli")},
                                     globals())


__all__ = ["COMMANDS", "LazyGroup", "cli", "main", "resume_gc"]
