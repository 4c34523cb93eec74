"""Faults with real processes: concurrent issuance, kill -9 mid-issue, bad key files."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from unit.test_ca_support import CA_PW, TestCA, build_ca, run_vaultkit, vaultkit_cmd
from vaultkit.ca.inventory import Inventory, serial_hex

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return build_ca(tmp_path_factory.mktemp("faults"))


def _env() -> dict[str, str]:
    return {**os.environ, "VAULTKIT_CA_PASSPHRASE": CA_PW}


def _issue_cmd(tca: TestCA, name: str, out: Path) -> list[str]:
    return [*vaultkit_cmd(), "ca", "--home", str(tca.home.root_dir), "issue", name,
            "--profile", "client", "--san", f"DNS:{name}.vaultkit.internal", "--out", str(out)]


def _assert_consistent(tca: TestCA, out: Path) -> Inventory:
    inv = Inventory(tca.home.inventory)
    assert inv.integrity_check() == "ok"
    for record in inv.all():
        cert = x509.load_pem_x509_certificate(record.pem.encode())
        assert serial_hex(cert.serial_number) == record.serial
    # every certificate file that exists is whole and known to the inventory
    for pem in out.glob("*.pem"):
        if pem.name.endswith(".chain.pem"):
            continue
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        assert inv.get(serial_hex(cert.serial_number)) is not None, pem
    return inv


def test_eight_concurrent_issues(tca: TestCA, tmp_path: Path) -> None:
    procs = [subprocess.Popen(_issue_cmd(tca, f"par{i}", tmp_path), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, results
    inv = _assert_consistent(tca, tmp_path)
    serials = {r.serial for r in inv.all() if r.name.startswith("par")}
    assert len(serials) == 8
    issued = {x509.load_pem_x509_certificate((tmp_path / f"par{i}.pem").read_bytes())
              .serial_number for i in range(8)}
    assert {serial_hex(s) for s in issued} == serials
    assert len([e for e in inv.events("issue") if (e["target"] or "").startswith("par")]) == 8


def test_kill_9_mid_issue_leaves_inventory_consistent(tca: TestCA, tmp_path: Path) -> None:
    rng = random.Random(5)
    outcomes = []
    for i in range(10):
        proc = subprocess.Popen(_issue_cmd(tca, f"kill{i}", tmp_path), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.35))  # start-up takes ~0.15 s; issuance follows
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait(timeout=30))
    assert -signal.SIGKILL in outcomes  # at least some really died mid-way
    _assert_consistent(tca, tmp_path)
    # the lock died with its holder: issuance still works afterwards
    done = run_vaultkit(*_issue_cmd(tca, "after-kill", tmp_path)[1:],
                        env={"VAULTKIT_CA_PASSPHRASE": CA_PW})
    assert done.returncode == 0, done.stderr
    _assert_consistent(tca, tmp_path)


def test_bad_key_files_give_clear_errors(tmp_path: Path) -> None:
    tca = build_ca(tmp_path)
    key = tca.home.intermediate_key
    home = str(tca.home.root_dir)
    args = ("ca", "--home", home, "issue", "k", "--san", "DNS:k.vaultkit.internal")
    r = run_vaultkit(*args, env={"VAULTKIT_CA_PASSPHRASE": "not the passphrase at all"})
    assert r.returncode == 5  # cryptographic failure
    assert "cannot decrypt the key: wrong passphrase" in r.stderr and "Traceback" not in r.stderr
    original = key.read_bytes()
    lines = original.splitlines()
    lines[2] = lines[2][:5] + (b"A" if lines[2][5:6] != b"A" else b"B") + lines[2][6:]
    key.write_bytes(b"\n".join(lines) + b"\n")
    r = run_vaultkit(*args, env={"VAULTKIT_CA_PASSPHRASE": CA_PW})
    assert r.returncode == 5 and "modified or damaged" in r.stderr, r.stderr
    key.write_bytes(original)
    key.chmod(0o644)
    r = run_vaultkit(*args, env={"VAULTKIT_CA_PASSPHRASE": CA_PW})
    assert r.returncode == 5 and "must not be readable by group or others" in r.stderr
    key.chmod(0o600)
    r = run_vaultkit(*args, env={"VAULTKIT_CA_PASSPHRASE": CA_PW})
    assert r.returncode == 0, r.stderr
