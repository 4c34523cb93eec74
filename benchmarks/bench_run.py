"""Benchmark: how long after a KV change the child of ``vaultkit run`` runs with the new value.

    .venv/bin/python benchmarks/bench_run.py [--changes 5] [--refresh 1 2]

Starts an OpenBao dev server, then for each ``--refresh`` interval runs
``vaultkit run --refresh R -- python child`` where the child appends the hash of its
``V`` and the wall-clock time to a log as it starts. The benchmark writes a new
KV v2 version and measures until the log shows the new child: the latency is
the wait for the next re-read (uniform over the interval, jittered 10% down),
plus stopping the old child (SIGTERM; it exits at once) and starting a new
Python interpreter. Target: no more than the refresh interval + 1 s, every time.

Printed side by side: the median and worst latency against the target
(interval + 1 s) and their ratio. The machine is shared; the numbers swing
with its load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness.servers import start_openbao  # noqa: E402

VAULTKIT = str(Path(sys.executable).parent / "vaultkit")
CHILD = r"""
import hashlib, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
with open(sys.argv[1], "a") as fh:
    fh.write(f"{hashlib.sha256(os.environ['V'].encode()).hexdigest()[:12]} {time.time()}\n")
while True:
    time.sleep(1)
"""


def tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def started_at(log: Path, wanted: str, timeout: float) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists():
            for line in log.read_text().splitlines():
                t, _, at = line.partition(" ")
                if t == wanted:
                    return float(at)
        time.sleep(0.01)
    raise TimeoutError("the child never started with the new value")


def measure(bao: object, refresh: float, changes: int, workdir: Path) -> list[tuple[float, float]]:
    from vaultkit.backends.vault import VaultClient

    root = VaultClient.from_config(bao.config())  # type: ignore[attr-defined]
    path = f"secret/data/bench-run-{refresh:g}"
    root.write(path, {"data": {"v": "v0"}})
    log = workdir / f"log-{refresh:g}"
    env = {**os.environ, "VAULT_ADDR": bao.addr, "VAULT_TOKEN": bao.token}  # type: ignore[attr-defined]
    proc = subprocess.Popen([VAULTKIT, "run", "-s", f"V=vault://secret/bench-run-{refresh:g}#v",
                             "--refresh", str(refresh), "--grace", "2", "--",
                             sys.executable, "-c", CHILD, str(log)],
                            env=env, stderr=subprocess.PIPE, text=True)
    samples = []
    try:
        started_at(log, tag("v0"), 30)
        for i in range(1, changes + 1):
            time.sleep(refresh * 0.37)  # land the change at varying points of the cycle
            value = f"v{i}"
            changed = time.time()
            root.write(path, {"data": {"v": value}})
            new_start = started_at(log, tag(value), refresh + 30)
            samples.append((new_start - changed, refresh))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--refresh", type=float, nargs="+", default=[1.0, 2.0])
    args = parser.parse_args()
    bao = start_openbao()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("refresh  changes  median latency  max latency  target (refresh+1s)  "
                  "max/target")
            for refresh in args.refresh:
                samples = measure(bao, refresh, args.changes, Path(tmp))
                lat = [s for s, _ in samples]
                target = refresh + 1.0
                print(f"{refresh:6.1f}s  {len(lat):7d}  {statistics.median(lat):13.2f}s  "
                      f"{max(lat):10.2f}s  {target:18.1f}s  {max(lat) / target:9.2f}"
                      f"  {'met' if max(lat) <= target else 'MISSED'}")
    finally:
        bao.stop()


if __name__ == "__main__":
    main()
