"""Run a child with its secrets and keep them fresh: what envconsul and Vault Agent's exec do.

:class:`Supervisor` starts the child, then, on the :class:`SecretWatcher`'s
schedule, renews leases and the Vault token (logging in again when renewal is
refused) and re-reads static secrets every ``refresh`` seconds. When a value
the child received changes, ``on_change`` decides:

* ``restart`` (the default, as in Vault Agent's exec mode): SIGTERM, up to
  ``grace`` seconds, SIGKILL, then the child is started again with the new
  environment. The environment of a running process cannot be changed, so this
  is the only mode in which the child *sees* the new values;
* ``signal:NAME`` sends that signal (for a child that fetches its own secrets,
  e.g. with ``load_secrets`` in-process, and uses the signal as a cue);
* ``none`` only logs.

A child that exits non-zero is restarted after ``backoff`` seconds (doubling up
to ``max_backoff``), at most ``max_restarts`` times in a row (a child that ran
``reset_after`` seconds resets the count); then the supervisor returns the
child's last code. ``restart_on_crash=False`` returns the child's first code.
A child that exits 0 ends the supervisor with 0.

If a value could not be refreshed for ``max_staleness`` seconds, the child is
stopped and :meth:`Supervisor.run` raises :class:`UnavailableError`. SIGTERM or SIGINT to the
supervisor stops the child the same graceful way; SIGHUP, SIGQUIT, SIGUSR1,
SIGUSR2 and SIGWINCH are forwarded. Leases are revoked whenever the
supervisor ends, unless ``keep_leases``.

>>> loaded = load_secrets(spec)                                         # doctest: +SKIP
>>> Supervisor(loaded, ["./server"], SupervisorPolicy(refresh=60)).run()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import ConfigError, UnavailableError
from ..secret import Secret

if TYPE_CHECKING:
    from .loader import LoadedSecrets
    from .watcher import SecretWatcher

logger = logging.getLogger("vaultkit.secrets.supervisor")

FORWARDED = ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
STOPPING = ("SIGTERM", "SIGINT")

Environment = Callable[[dict[str, str]], dict[str, str]]


def parse_on_change(text: str) -> tuple[str, int | None]:
    """``restart`` | ``none`` | ``signal:NAME`` (``HUP``, ``SIGHUP`` or a number)."""
    mode, _, name = text.partition(":")
    if mode in ("restart", "none") and not name:
        return mode, None
    if mode == "signal" and name:
        if name.isascii() and name.isdigit():
            try:
                return mode, int(signal.Signals(int(name)))
            except ValueError:
                raise ConfigError(f"no signal number {name} in --on-change") from None
        wanted = name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()
        sig = getattr(signal, wanted, None)
        if isinstance(sig, signal.Signals):
            return mode, int(sig)
        raise ConfigError(f"unknown signal {name!r} in --on-change")
    raise ConfigError(f"--on-change must be restart, none or signal:NAME, not {text!r}")


@dataclass(frozen=True)
class SupervisorPolicy:
    on_change: str = "restart"
    grace: float = 10.0
    refresh: float | None = 300.0
    max_staleness: float | None = 3600.0
    restart_on_crash: bool = True
    max_restarts: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    reset_after: float = 60.0
    keep_leases: bool = False


def needs_supervision(loaded: LoadedSecrets, policy: SupervisorPolicy) -> bool:
    """True if something must be renewed or re-read while the child runs."""
    if loaded.leases:
        return True
    if not policy.refresh or parse_on_change(policy.on_change)[0] == "none":
        return False
    # A source marked ``static`` (env://, kms:) cannot change while the child runs.
    return any(not getattr(loaded.sources.get(ref.scheme), "static", False)
               for ref in loaded.plan.units.values())


class Supervisor:
    """Start ``command`` with ``loaded``'s values and look after it (see the module docs).

    ``environment(values) -> env`` builds the child's environment (``vaultkit run``
    strips its credentials there); ``say`` prints what the supervisor does.

    >>> sup = Supervisor(load_secrets(spec), ["./server"], SupervisorPolicy(grace=20))  # doctest: +SKIP
    >>> code = sup.run()            # blocks; sup.stop() from another thread ends it  # doctest: +SKIP
    """

    def __init__(self, loaded: LoadedSecrets, command: Sequence[str],
                 policy: SupervisorPolicy | None = None, *,
                 environment: Environment | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.loaded = loaded
        self.command = list(command)
        self.policy = policy or SupervisorPolicy()
        self.mode, self.signal = parse_on_change(self.policy.on_change)
        self._environment = environment or (lambda secrets: {**os.environ, **secrets})
        self._say = say or (lambda text: print(f"vaultkit: {text}", file=sys.stderr, flush=True))
        self._wake = threading.Event()
        self._changed = threading.Event()
        self._stop_signal: int | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.watcher: SecretWatcher | None = None
        #: what happened, for tests and the status line: starts, restarts, signals, crashes
        self.events: list[str] = []

    # -- the child

    def _start(self) -> subprocess.Popen[bytes]:
        current = self.watcher.current() if self.watcher else dict(self.loaded)
        values = {n: s.reveal() for n, s in current.items()}
        child = subprocess.Popen(self.command, env=self._environment(values))  # noqa: S603
        self.events.append("start")
        threading.Thread(target=self._reap, args=(child,), name="vaultkit-run-wait",
                         daemon=True).start()
        return child

    def _reap(self, child: subprocess.Popen[bytes]) -> None:
        child.wait()
        self._wake.set()

    def _stop_child(self, sig: int = signal.SIGTERM) -> int:
        child = self.child
        if child is None:
            return 0
        if child.poll() is None:
            child.send_signal(sig)
            try:
                child.wait(timeout=self.policy.grace)
            except subprocess.TimeoutExpired:
                self._say(f"the child did not stop within {self.policy.grace:g}s; SIGKILL")
                child.kill()
                child.wait()
        return exit_status(child.returncode)

    # -- signals and changes

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum
        self._wake.set()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the child gracefully with ``sig`` and end :meth:`run` (what SIGTERM does)."""
        self._stop_signal = sig
        self._wake.set()

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def _on_change(self, changed: dict[str, Secret[str]]) -> None:
        self.events.append("change")
        self._changed.set()
        self._wake.set()

    def _install(self) -> dict[int, object]:
        previous: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # signal handlers can only be set from the main thread
        for name, handler in [*((n, self._on_signal) for n in STOPPING),
                              *((n, self._forward) for n in FORWARDED)]:
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, handler)
        return previous

    # -- the loop

    def run(self) -> int:
        """Supervise until the child is done; return the exit status to report."""
        from .watcher import SecretWatcher

        p = self.policy
        static_ttl = p.refresh if self.mode != "none" else None
        self.watcher = SecretWatcher(self.loaded, static_ttl=static_ttl or None,
                                     max_staleness=None, on_change=self._on_change,
                                     revoke_on_close=not p.keep_leases).start()
        previous = self._install()
        try:
            return self._loop()
        finally:
            # Our handlers stay until the child is stopped and the leases are revoked: a
            # second SIGTERM or Ctrl-C here only sets the flag again, instead of killing
            # vaultkit (or raising KeyboardInterrupt) with the leases still live.
            try:
                if self.child is not None and self.child.poll() is None:
                    self._stop_child()
                self.watcher.close()
                if not p.keep_leases and self.loaded.leases:
                    logger.info("leases revoked")
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)  # type: ignore[arg-type]

    def _loop(self) -> int:
        p = self.policy
        crashes = 0
        self.child = self._start()
        started = time.monotonic()
        while True:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            child = self.child
            if self._stop_signal is not None:
                name = signal.Signals(self._stop_signal).name
                self._say(f"{name} received; stopping the child")
                return self._stop_child(self._stop_signal)
            stale = self._stale()
            if stale:
                self._say(stale + "; stopping the child")
                self._stop_child()
                raise UnavailableError(f"stopped the child: {stale}", source="run")
            if child.poll() is not None:
                code = exit_status(child.returncode)
                if code == 0 or not p.restart_on_crash:
                    return code
                if time.monotonic() - started >= p.reset_after:
                    crashes = 0
                if crashes >= p.max_restarts:
                    self._say(f"the child exited with {code} after {crashes} restart(s); "
                              f"giving up (the limit is {p.max_restarts})")
                    return code
                pause = min(p.max_backoff, p.backoff * 2 ** crashes)
                crashes += 1
                self.events.append("crash")
                self._say(f"the child exited with {code}; restart {crashes}/{p.max_restarts} "
                          f"in {pause:g}s")
                if self._sleep(pause):
                    continue  # a stop signal arrived during the pause
                # The new child gets the current values: a change seen during the pause is
                # already in them (cleared before reading, so a later one is not lost).
                self._changed.clear()
                self.child, started = self._start(), time.monotonic()
                continue
            if self._changed.is_set():
                self._changed.clear()
                self._act_on_change()
                started = time.monotonic() if self.mode == "restart" else started

    def _act_on_change(self) -> None:
        if self.mode == "restart":
            self._say("secrets changed; restarting the child")
            self._stop_child()
            if self._stop_signal is not None:
                return  # SIGTERM/SIGINT during the grace period: stop, do not start again
            self.events.append("restart")
            self.child = self._start()
        elif self.mode == "signal" and self.signal is not None:
            child = self.child
            if child is not None and child.poll() is None:
                self._say(f"secrets changed; sending {signal.Signals(self.signal).name}")
                child.send_signal(self.signal)
                self.events.append("signal")
        else:
            self._say("secrets changed; --on-change none: the child keeps its values")

    def _sleep(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._stop_signal is not None:
                return True
            self._wake.wait(timeout=left)
            self._wake.clear()
        return self._stop_signal is not None

    def _stale(self) -> str | None:
        limit = self.policy.max_staleness
        if not limit or self.watcher is None:
            return None
        for row in self.watcher.status():
            if row["next"] != "none" and row["age"] > limit:
                return (f"{row['reference']} could not be refreshed for {row['age']:.0f}s "
                        f"(max staleness {limit:g}s)")
        return None


def exit_status(returncode: int) -> int:
    """A shell's view of a child's status: the code, or 128+N when killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def resolve_command(command: Sequence[str], env: Mapping[str, str]) -> str:
    """The program to run: searched on the child's ``PATH`` as env(1) and the shell do."""
    import shutil

    program = command[0]
    if os.sep in program:
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(program)
    return found


__all__ = ["Supervisor", "SupervisorPolicy", "exit_status", "needs_supervision",
           "parse_on_change", "resolve_command"]
