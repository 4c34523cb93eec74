"""``vaultkit run`` supervising a child against real OpenBao (+ PostgreSQL's dynamic credentials).

Every test starts the real CLI as a subprocess, with TTLs of a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from harness.servers import OpenBao, Postgres
from harness.vault_database import enable_database, socket_dir
from harness.waiting import wait_for
from vaultkit.backends.vault import VaultClient
from vaultkit.errors import VaultkitError

pytestmark = pytest.mark.integration

VAULTKIT = str(Path(sys.executable).parent / "vaultkit")

# Appends "start <tag of V> <DB_USER> <connect result>" per start; exits on SIGTERM with 0.
CHILD = r"""
import hashlib, os, signal, sys, time
log = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
result = "-"
if os.environ.get("DB_USER"):
    import psycopg
    try:
        with psycopg.connect(host=sys.argv[2], dbname="postgres", user=os.environ["DB_USER"],
                             password=os.environ["DB_PASSWORD"]) as conn:
            result = "connected" if conn.execute("select 1").fetchone() == (1,) else "bad"
    except psycopg.OperationalError:
        result = "refused"
tag = hashlib.sha256(os.environ.get("V", "").encode()).hexdigest()[:12]
with open(log, "a") as fh:
    fh.write(f"start {tag} {os.environ.get('DB_USER', '-')} {result}\n")
if len(sys.argv) > 3 and sys.argv[3] == "crash":
    sys.exit(5)
while True:
    time.sleep(0.1)
"""


def tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def starts(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [ln.split() for ln in log.read_text().splitlines() if ln.startswith("start")]


@pytest.fixture(scope="module")
def root(openbao: OpenBao, postgres: Postgres) -> VaultClient:
    # rotating: 2 s leases capped at 3 s, renewed once, then replaced by a new credential
    return enable_database(openbao, postgres, "db-run", {"rotating": ("2s", "3s"),
                                                         "steady": ("30s", "60s")})


@pytest.fixture(scope="module")
def database(root: VaultClient) -> str:
    return "db-run"


class Run:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([VAULTKIT, "run", *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


@pytest.fixture
def run(openbao: OpenBao, tmp_path: Path) -> Iterator[Callable[..., Run]]:
    started: list[Run] = []

    def start(args: list[str], token: str | None = None) -> Run:
        env = {**os.environ, "VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token or openbao.token}
        r = Run(args, env, tmp_path)
        started.append(r)
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def leases(root: VaultClient, prefix: str) -> list[str]:
    try:
        body = root.request("LIST", f"sys/leases/lookup/{prefix}")
    except VaultkitError:
        return []  # 404: none left
    return list((body.get("data") or {}).get("keys") or [])


def test_dynamic_credentials_are_replaced_and_the_child_restarted(
        database: str, postgres: Postgres, root: VaultClient, run: Callable[..., Run],
        tmp_path: Path, leak_canary: LeakCanary) -> None:
    log = tmp_path / "log"
    r = run(["-s", f"DB_USER=vault+dyn://{database}/creds/rotating#username",
             "-s", f"DB_PASSWORD=vault+dyn://{database}/creds/rotating#password",
             "--grace", "2", "--", sys.executable, "-c", CHILD, str(log), socket_dir(postgres)])
    wait_for(lambda: len(starts(log)) >= 2, timeout=15)
    first, second = starts(log)[:2]
    assert first[3] == "connected" and second[3] == "connected"
    assert first[2] != second[2]  # a new credential, and the new child can use it
    assert leases(root, f"{database}/creds/rotating/")
    code, err = r.stop()
    assert code == 0
    assert "secrets changed; restarting the child" in err
    # every lease it was issued is revoked on the way out, checked in OpenBao
    assert leases(root, f"{database}/creds/rotating/") == []
    leak_canary.watch_text(err)


def test_sigterm_stops_the_child_and_revokes_unless_kept(
        database: str, postgres: Postgres, root: VaultClient, run: Callable[..., Run],
        tmp_path: Path) -> None:
    for keep in (False, True):
        log = tmp_path / f"log-{keep}"
        r = run(["-s", f"DB_USER=vault+dyn://{database}/creds/steady#username",
                 "-s", f"DB_PASSWORD=vault+dyn://{database}/creds/steady#password",
                 *(["--keep-leases"] if keep else []),
                 "--", sys.executable, "-c", CHILD, str(log), socket_dir(postgres)])
        wait_for(lambda log=log: len(starts(log)) == 1, timeout=15)  # type: ignore[misc]
        assert len(leases(root, f"{database}/creds/steady/")) == 1
        code, err = r.stop(signal.SIGTERM)
        assert code == 0 and "SIGTERM received; stopping the child" in err
        assert len(leases(root, f"{database}/creds/steady/")) == (1 if keep else 0)
    root.request("PUT", f"sys/leases/revoke-prefix/{database}/creds/steady")


def test_a_kv_update_restarts_the_child_within_the_refresh_interval(
        openbao: OpenBao, root: VaultClient, run: Callable[..., Run], tmp_path: Path,
        leak_canary: LeakCanary) -> None:
    old, new = leak_canary.new(), leak_canary.new()
    root.write("secret/data/run-kv", {"data": {"v": old}})
    log = tmp_path / "log"
    r = run(["-s", "V=vault://secret/run-kv#v", "--refresh", "1", "--grace", "2", "--",
             sys.executable, "-c", CHILD, str(log)])
    wait_for(lambda: len(starts(log)) == 1, timeout=15)
    assert starts(log)[0][1] == tag(old)
    root.write("secret/data/run-kv", {"data": {"v": new}})
    changed_at = time.monotonic()
    wait_for(lambda: len(starts(log)) == 2, timeout=5)
    # refresh 1 s (jittered down) + the stop and start of a Python child
    assert time.monotonic() - changed_at < 1 + 2.5
    assert starts(log)[1][1] == tag(new)
    code, err = r.stop()
    assert code == 0
    leak_canary.watch_text(err)


def test_the_token_is_renewed_while_the_child_runs(
        openbao: OpenBao, root: VaultClient, run: Callable[..., Run], tmp_path: Path) -> None:
    root.write("secret/data/run-token", {"data": {"v": "x"}})
    created = root.write("auth/token/create", {"ttl": "3s", "explicit_max_ttl": "60s",
                                               "policies": ["root"]})
    token = created["auth"]["client_token"]
    log = tmp_path / "log"
    r = run(["-s", "V=vault://secret/run-token#v", "--refresh", "1", "--", sys.executable,
             "-c", CHILD, str(log)], token=token)
    wait_for(lambda: len(starts(log)) == 1, timeout=15)
    time.sleep(4.5)  # past the token's 3 s TTL: only renewals keep it alive
    info = root.write("auth/token/lookup", {"token": token})["data"]
    assert info["last_renewal_time"]  # renewed by vaultkit, seen by OpenBao
    assert info["ttl"] > 0
    code, err = r.stop()
    assert code == 0 and "Traceback" not in err


def test_a_crashing_child_is_restarted_with_backoff_then_given_up(
        openbao: OpenBao, root: VaultClient, run: Callable[..., Run], tmp_path: Path) -> None:
    root.write("secret/data/run-crash", {"data": {"v": "x"}})
    log = tmp_path / "log"
    t0 = time.monotonic()
    r = run(["-s", "V=vault://secret/run-crash#v", "--restart-backoff", "0.2",
             "--max-restarts", "2", "--", sys.executable, "-c", CHILD, str(log), "-", "crash"])
    code, err = r.stop(None, timeout=30)  # it ends by itself
    assert code == 5  # the child's last code
    assert len(starts(log)) == 3
    assert time.monotonic() - t0 >= 0.2 + 0.4
    assert "restart 1/2 in 0.2s" in err and "restart 2/2 in 0.4s" in err
    assert "giving up (the limit is 2)" in err


def test_refreshes_survive_the_token_max_ttl_by_logging_in_again(
        openbao: OpenBao, root: VaultClient, tmp_path: Path, leak_canary: LeakCanary) -> None:
    """AppRole tokens of 2 s capped at 3 s: refreshes after that only work with a new login.
    The AppRole secret id is vaultkit's credential and never reaches the child."""
    openbao.bao("auth", "enable", "-path=approle-run", "approle", check=False)
    root.write("sys/policies/acl/run-relogin", {
        "policy": 'path "secret/data/run-relogin" { capabilities = ["read"] }'})
    root.write("auth/approle-run/role/short", {"token_policies": ["run-relogin"],
                                               "token_ttl": "2s", "token_max_ttl": "3s"})
    role_id = root.read("auth/approle-run/role/short/role-id")["data"]["role_id"]
    secret_id = root.write("auth/approle-run/role/short/secret-id")["data"]["secret_id"]
    leak_canary.add(secret_id)
    root.write("secret/data/run-relogin", {"data": {"v": "before"}})
    log = tmp_path / "log"
    child = CHILD.replace('result = "-"', 'result = "secret-id-visible" if '
                          '"VAULT_APPROLE_SECRET_ID" in os.environ else "-"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update({"VAULT_ADDR": openbao.addr, "VAULTKIT_VAULT_AUTH": "approle",
                "VAULTKIT_VAULT_AUTH_MOUNT": "approle-run", "VAULTKIT_VAULT_ROLE_ID": role_id,
                "VAULT_APPROLE_SECRET_ID": secret_id})
    r = Run(["-s", "V=vault://secret/run-relogin?kv=2#v", "--refresh", "1", "--grace", "2",
             "--", sys.executable, "-c", child, str(log)], env, tmp_path)
    try:
        wait_for(lambda: len(starts(log)) == 1, timeout=15)
        time.sleep(4)  # the first token is past its 3 s max TTL now
        root.write("secret/data/run-relogin", {"data": {"v": "after"}})
        wait_for(lambda: len(starts(log)) == 2, timeout=6)
        first, second = starts(log)
        assert second[1] == tag("after")
        assert first[3] == second[3] == "-"  # the child never saw the secret id
        code, err = r.stop()
        assert code == 0
        leak_canary.watch_text(err)
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
