"""The supervisor behind ``vaultkit run``, against the in-memory source and real child processes."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from harness.waiting import wait_for
from vaultkit.errors import ConfigError, UnavailableError
from vaultkit.secrets import MemorySource, load_secrets
from vaultkit.secrets.child_env import child_environment, is_credential
from vaultkit.secrets.supervisor import (
    Supervisor,
    SupervisorPolicy,
    needs_supervision,
    parse_on_change,
)

# The child appends one line per start: "start <sha256 prefix of PW>", and "hup" on SIGHUP.
CHILD = r"""
import hashlib, os, signal, sys, time
log = sys.argv[1]
def note(text):
    with open(log, "a") as fh:
        fh.write(text + "\n")
signal.signal(signal.SIGHUP, lambda *a: note("hup"))
note("start " + hashlib.sha256(os.environ.get("PW", "").encode()).hexdigest()[:12])
mode = sys.argv[2] if len(sys.argv) > 2 else "sleep"
if mode == "crash":
    sys.exit(7)
if mode == "crash-once" and not os.path.exists(log + ".crashed"):
    open(log + ".crashed", "w").close()
    sys.exit(7)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.05)
"""


def tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class Running:
    """A supervisor run on a thread (signals are the CLI's business; stop() is the library's)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._go, daemon=True)
        self.thread.start()

    def _go(self) -> None:
        try:
            self.result = self.sup.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.result = exc

    def join(self, timeout: float = 10.0) -> int | BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the supervisor did not finish"
        return self.result


def supervise(store: MemorySource, log: Path, mode: str = "sleep", **policy: object
              ) -> Supervisor:
    loaded = load_secrets({"PW": "memory://app#pw"}, sources=[store])
    defaults: dict[str, object] = {"refresh": 0.2, "grace": 2.0, "backoff": 0.05}
    return Supervisor(loaded, [sys.executable, "-c", CHILD, str(log), mode],
                      SupervisorPolicy(**{**defaults, **policy}),  # type: ignore[arg-type]
                      say=lambda text: None)


def test_a_changed_value_restarts_the_child_with_the_new_environment(
        tmp_path: Path, leak_canary: LeakCanary) -> None:
    store = MemorySource()
    old, new = leak_canary.new(), leak_canary.new()
    store.put("app", f'{{"pw": "{old}"}}')
    log = tmp_path / "log"
    running = Running(supervise(store, log))
    wait_for(lambda: lines(log) == [f"start {tag(old)}"])
    store.put("app", f'{{"pw": "{new}"}}')
    wait_for(lambda: lines(log)[-1:] == [f"start {tag(new)}"])
    running.sup.stop()
    assert running.join() == 128 + signal.SIGTERM
    assert running.sup.events.count("restart") == 1
    leak_canary.watch(running.sup.events, running.sup.loaded)


def test_signal_mode_signals_instead_of_restarting(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "one"}')
    log = tmp_path / "log"
    running = Running(supervise(store, log, on_change="signal:HUP"))
    wait_for(lambda: len(lines(log)) == 1)
    store.put("app", '{"pw": "two"}')
    wait_for(lambda: "hup" in lines(log))
    running.sup.stop()
    running.join()
    assert [ln for ln in lines(log) if ln.startswith("start")] == [f"start {tag('one')}"]


def test_none_mode_keeps_the_child(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "one"}', lease_duration=3, renewable=True)
    log = tmp_path / "log"
    running = Running(supervise(store, log, on_change="none"))
    wait_for(lambda: len(lines(log)) == 1)
    wait_for(lambda: store.calls["renew"] >= 1)  # the lease is still renewed
    running.sup.stop()
    running.join()
    assert len(lines(log)) == 1


def test_crashes_are_restarted_with_backoff_up_to_the_limit(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "x"}')
    log = tmp_path / "log"
    sup = supervise(store, log, mode="crash", max_restarts=3, backoff=0.1)
    t0 = time.monotonic()
    assert sup.run() == 7
    elapsed = time.monotonic() - t0
    assert len(lines(log)) == 4  # the first start and 3 restarts
    assert elapsed >= 0.1 + 0.2 + 0.4  # doubling pauses
    assert sup.events.count("crash") == 3


def test_a_change_during_the_crash_backoff_starts_the_child_once(tmp_path: Path) -> None:
    # The child started after the pause already has the new value: the change that arrived
    # during the pause must not restart it a second time.
    store = MemorySource()
    store.put("app", '{"pw": "one"}')
    log = tmp_path / "log"
    running = Running(supervise(store, log, mode="crash-once", backoff=1.0))
    wait_for(lambda: lines(log) == [f"start {tag('one')}"])
    store.put("app", '{"pw": "two"}')
    wait_for(lambda: len(lines(log)) == 2)
    time.sleep(1.5)  # the loop wakes at least once a second
    running.sup.stop()
    running.join()
    assert lines(log) == [f"start {tag('one')}", f"start {tag('two')}"]
    assert "restart" not in running.sup.events


def test_no_restart_returns_the_first_code(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "x"}')
    log = tmp_path / "log"
    assert supervise(store, log, mode="crash", restart_on_crash=False).run() == 7
    assert len(lines(log)) == 1


def test_stop_revokes_leases_unless_kept(tmp_path: Path) -> None:
    for keep in (False, True):
        store = MemorySource()
        store.put("app", '{"pw": "x"}', lease_duration=30, renewable=True)
        log = tmp_path / f"log-{keep}"
        running = Running(supervise(store, log, keep_leases=keep))
        wait_for(lambda log=log: len(lines(log)) == 1)  # type: ignore[misc]
        assert store.active_leases == 1
        running.sup.stop()
        assert running.join() == 128 + signal.SIGTERM
        assert store.active_leases == (1 if keep else 0)


def test_a_second_signal_while_stopping_does_not_skip_the_revocation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C pressed twice, or a second SIGTERM: it lands while the leases are revoked,
    # and must not end vaultkit (KeyboardInterrupt / default action) before they are.
    store = MemorySource()
    store.put("app", '{"pw": "x"}', lease_duration=30, renewable=True)
    log = tmp_path / "log"
    sup = supervise(store, log)
    real_revoke = store.revoke

    def revoke_after_a_second_signal(lease: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here
        real_revoke(lease)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "revoke", revoke_after_a_second_signal)

    def first_signal() -> None:
        wait_for(lambda: len(lines(log)) == 1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=first_signal, daemon=True).start()
    handler_before = signal.getsignal(signal.SIGINT)
    try:
        code: int | None = sup.run()  # on the main thread: its signal handlers are installed
    except KeyboardInterrupt:
        code = None
    assert code == 128 + signal.SIGTERM
    assert store.active_leases == 0
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "x"}')
    log = tmp_path / "log"
    running = Running(supervise(store, log, mode="stubborn", grace=0.3))
    wait_for(lambda: len(lines(log)) == 1)
    time.sleep(0.2)  # let the child install its SIG_IGN
    running.sup.stop()
    assert running.join() == 128 + signal.SIGKILL


def test_sigterm_during_a_restarts_grace_does_not_start_a_new_child(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "one"}')
    log = tmp_path / "log"
    running = Running(supervise(store, log, mode="stubborn", grace=1.0))
    wait_for(lambda: len(lines(log)) == 1)
    time.sleep(0.2)  # let the child install its SIG_IGN
    store.put("app", '{"pw": "two"}')
    wait_for(lambda: "change" in running.sup.events)  # the restart waits out the grace
    running.sup.stop()
    assert running.join() == 128 + signal.SIGKILL
    assert running.sup.events.count("start") == 1
    assert lines(log) == [f"start {tag('one')}"]


def test_a_stale_secret_stops_the_child(tmp_path: Path) -> None:
    store = MemorySource()
    store.put("app", '{"pw": "x"}')
    log = tmp_path / "log"
    running = Running(supervise(store, log, max_staleness=0.6))
    wait_for(lambda: len(lines(log)) == 1)
    store.down = True
    result = running.join()
    assert isinstance(result, UnavailableError)
    assert "max staleness" in str(result) and "memory://app" in str(result)
    assert running.sup.child is not None and running.sup.child.poll() is not None


def test_what_needs_supervision() -> None:
    store = MemorySource()
    store.put("static", "v")
    store.put("leased", "v", lease_duration=30, renewable=True)
    static = load_secrets({"A": "memory://static"}, sources=[store])
    leased = load_secrets({"A": "memory://leased"}, sources=[store])
    env_only = load_secrets({"A": "env://PATH"})
    policy = SupervisorPolicy()
    assert needs_supervision(static, policy)
    assert not needs_supervision(static, SupervisorPolicy(refresh=None))
    assert not needs_supervision(static, SupervisorPolicy(on_change="none"))
    assert needs_supervision(leased, SupervisorPolicy(refresh=None, on_change="none"))
    assert not needs_supervision(env_only, policy)  # env:// cannot change under us


def test_on_change_parsing() -> None:
    assert parse_on_change("restart") == ("restart", None)
    assert parse_on_change("signal:HUP") == ("signal", signal.SIGHUP)
    assert parse_on_change("signal:SIGUSR1") == ("signal", signal.SIGUSR1)
    for bad in ("signal:NOPE", "reload", "signal:", "restart:now"):
        with pytest.raises(ConfigError):
            parse_on_change(bad)


def test_a_signal_number_must_name_a_signal() -> None:
    # "signal:999" used to pass and then end the supervisor with a ValueError traceback
    # on the first change; "signal:²" passed str.isdigit and broke int().
    assert parse_on_change("signal:1") == ("signal", signal.SIGHUP)
    for bad in ("signal:999", "signal:0", "signal:\u00b2", "signal:-1"):
        with pytest.raises(ConfigError):
            parse_on_change(bad)


def test_child_environment_strips_every_credential() -> None:
    base = {"PATH": "/bin", "LANG": "C", "VAULT_TOKEN": "t", "BAO_TOKEN": "t",
            "VAULT_APPROLE_SECRET_ID": "s", "MY_SECRET_ID": "s", "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "k", "AWS_SESSION_TOKEN": "t", "AWS_REGION": "eu-west-1",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "c",
            "VAULTKIT_CA_PASSPHRASE": "p", "VAULTKIT_ROOT_PASSPHRASE": "p",
            "VAULT_ADDR": "http://x", "VAULTKIT_VAULT_TOKEN": "t"}
    env = child_environment({"APP_PW": "v"}, secret_id_env="MY_SECRET_ID", base=base)
    assert env == {"PATH": "/bin", "LANG": "C", "AWS_REGION": "eu-west-1",
                   "VAULT_ADDR": "http://x", "APP_PW": "v"}
    assert child_environment({}, keep_credentials=True, base=base) == base
    # a secret the spec names is the child's own, not vaultkit's credential
    mine = child_environment({"AWS_SECRET_ACCESS_KEY": "from-vault"}, base=base)
    assert mine["AWS_SECRET_ACCESS_KEY"] == "from-vault"
    assert is_credential("BAO_WRAPPED_TOKEN") and not is_credential("VAULT_ADDR")
