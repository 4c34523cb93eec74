"""Benchmark the CA (issue 5). Run: ``.venv/bin/python benchmarks/bench_ca.py [--runs N]``.

1. One leaf end to end through the CLI (``vaultkit ca issue``: P-256 key + signing +
   inventory + files), against ``openssl req -new -newkey ec`` + ``openssl x509 -req``.
   OpenSSL is measured twice: with the CA key encrypted at the same 600,000 PBKDF2 rounds
   vaultkit uses (the same work), and with a plaintext CA key (OpenSSL's best case).
2. A CRL with 100,000 revoked entries (read from the inventory, signed, written PEM+DER).
3. Time per revocation with 1,000 and 100,000 certificates in the inventory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases
from vaultkit.ca.inventory import Inventory, serial_hex

CA_PW = "benchmark intermediate passphrase"
ROOT_PW = "benchmark root passphrase!"


def vaultkit_bin() -> str:
    return shutil.which("vaultkit", path=str(Path(sys.executable).parent)) or "vaultkit"


def median_wall(cmds: list[list[str]], env: dict[str, str], runs: int) -> float:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        for cmd in cmds:
            subprocess.run([c.replace("{i}", str(i)) for c in cmd], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_ca(work: Path, kdf_rounds: int) -> CertificateAuthority:
    ca = CertificateAuthority(CAHome(work / "home"), kdf_rounds=kdf_rounds,
                              passphrases=StaticPassphrases({"root": ROOT_PW,
                                                             "intermediate": CA_PW}))
    ca.init_root("Bench Root", root_key_out=work / "root.key")
    ca.create_intermediate("Bench Issuing")
    ca.sign_intermediate(work / "root.key")
    return ca


def bench_issue(work: Path, runs: int) -> dict[str, float]:
    ca = make_ca(work / "cli", kdf_rounds=600_000)
    home = ca.home
    env = {**os.environ, "VAULTKIT_CA_PASSPHRASE": CA_PW}
    out = work / "cli-out"
    vk = median_wall([[vaultkit_bin(), "ca", "--home", str(home.root_dir), "issue", "leaf{i}",
                       "--profile", "server", "--san", "DNS:leaf{i}.bench.internal",
                       "--out", str(out)]], env, runs)
    # OpenSSL doing the same: new P-256 key + CSR, then sign with the intermediate.
    ossl = work / "openssl"
    ossl.mkdir()
    ext = ossl / "ext.cnf"
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid\nsubjectAltName=DNS:leaf.bench.internal\n")
    plain_key = ossl / "inter-plain.key"
    subprocess.run(["openssl", "pkey", "-in", str(home.intermediate_key), "-passin",
                    "env:VAULTKIT_CA_PASSPHRASE", "-out", str(plain_key)], env=env, check=True)

    def openssl_cmds(ca_key: Path, passin: list[str]) -> list[list[str]]:
        return [
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(ossl / "l{i}.key"), "-subj", "/CN=leaf{i}",
             "-out", str(ossl / "l{i}.csr")],
            ["openssl", "x509", "-req", "-in", str(ossl / "l{i}.csr"), "-CA",
             str(home.intermediate_cert), "-CAkey", str(ca_key), *passin, "-days", "90",
             "-sha256", "-set_serial", "0x{i}1234567", "-extfile", str(ext),
             "-out", str(ossl / "l{i}.pem")],
        ]

    same = median_wall(openssl_cmds(home.intermediate_key,
                                    ["-passin", "env:VAULTKIT_CA_PASSPHRASE"]), env, runs)
    plain = median_wall(openssl_cmds(plain_key, []), env, runs)
    python_start = median_wall([[sys.executable, "-c", "pass"]], env, runs)
    cli_base = median_wall([[vaultkit_bin(), "--help"]], env, runs)
    lib = []
    for i in range(runs):  # the same issuance in-process: no interpreter start-up or imports
        t0 = time.perf_counter()
        ca.issue(f"lib{i}", profile="server", sans=[f"DNS:lib{i}.bench.internal"],
                 out_dir=work / "lib-out")
        lib.append(time.perf_counter() - t0)
    return {"vaultkit_cli_s": vk, "openssl_encrypted_ca_key_s": same,
            "openssl_plain_ca_key_s": plain, "python_startup_s": python_start,
            "vaultkit_help_s": cli_base, "library_issue_s": statistics.median(lib),
            "ratio_library_vs_openssl_same_work": statistics.median(lib) / same,
            "ratio_vs_openssl_same_work": vk / same, "ratio_vs_openssl_plain_key": vk / plain}


def fill(inv: Inventory, template_pem: str, issuer_ski: str, n: int, start: int) -> None:
    rows = [(serial_hex(start + i), f"bulk{start + i}", "leaf", "server", issuer_ski, "00",
             "CN=bulk", '["DNS:bulk.bench.internal"]', "ec-p256", "ca", "2025-01-01T00:00:00Z",
             "2099-01-01T00:00:00Z", "00", "valid", None, None, None, "2025-01-01T00:00:00Z",
             template_pem) for i in range(n)]
    with inv.transaction() as db:
        db.executemany("INSERT INTO certs VALUES (" + ",".join("?" * 19) + ")", rows)  # noqa: S608


def bench_crl_and_revoke(work: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    ca = make_ca(work / "crl", kdf_rounds=1000)  # these timings are not about the KDF
    inter = ca.intermediate_cert()
    from vaultkit.ca.authority import cert_pem, ski_hex

    ski = ski_hex(inter)
    pem = cert_pem(inter).decode()
    # 100k revoked entries in the CRL
    fill(ca.inventory, pem, ski, 100_000, 1 << 100)
    with ca.inventory.transaction() as db:
        db.execute("UPDATE certs SET status='revoked', revoked_at='2025-06-01T00:00:00Z', "
                   "reason='keyCompromise' WHERE name LIKE 'bulk%'")
    t0 = time.perf_counter()
    crls = ca.generate_crl()
    results["crl_100k_entries_s"] = time.perf_counter() - t0
    results["crl_100k_entries_count"] = float(len(crls["intermediate"]))
    results["crl_100k_der_bytes"] = float(ca.home.intermediate_crl.with_suffix(".crl.der")
                                          .stat().st_size)

    for size in (1_000, 100_000):
        ca2 = make_ca(work / f"rev{size}", kdf_rounds=1000)
        inter2 = ca2.intermediate_cert()
        fill(ca2.inventory, cert_pem(inter2).decode(), ski_hex(inter2), size, 1 << 120)
        serials = [serial_hex((1 << 120) + i) for i in range(0, size, size // 200)][:200]
        t0 = time.perf_counter()
        for s in serials:
            ca2.revoke(s, reason="superseded", regenerate_crl=False)
        results[f"revoke_per_op_{size}_ms"] = (time.perf_counter() - t0) / len(serials) * 1000
        # with the CRL re-signed on every revocation (the CLI default): up to 20 entries
        extra = [serial_hex((1 << 120) + i + 1) for i in range(0, size, size // 20)][:20]
        t0 = time.perf_counter()
        for s in extra:
            ca2.revoke(s, reason="superseded")
        results[f"revoke_with_crl_per_op_{size}_ms"] = (time.perf_counter() - t0) / 20 * 1000
        ca2.close()
    results["revoke_ratio_100k_vs_1k"] = (results["revoke_per_op_100000_ms"]
                                          / results["revoke_per_op_1000_ms"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vk-bench-ca-") as tmp:
        work = Path(tmp)
        results = {**bench_issue(work, args.runs), **bench_crl_and_revoke(work)}
    print(json.dumps({k: round(v, 4) for k, v in results.items()}, indent=2))
    print(f"leaf via CLI: {results['ratio_vs_openssl_same_work']:.2f}x openssl with an equally "
          f"encrypted CA key, {results['ratio_vs_openssl_plain_key']:.2f}x openssl with a "
          f"plaintext CA key (target <= 1.0x)")
    print(f"in-process ca.issue(): {results['ratio_library_vs_openssl_same_work']:.2f}x openssl "
          f"(same work); `vaultkit --help` alone takes {results['vaultkit_help_s']:.3f} s")
    print(f"CRL with 100k entries: {results['crl_100k_entries_s']:.2f} s (target <= 2 s)")
    print(f"revocation: {results['revoke_per_op_1000_ms']:.2f} ms at 1k, "
          f"{results['revoke_per_op_100000_ms']:.2f} ms at 100k "
          f"(ratio {results['revoke_ratio_100k_vs_1k']:.2f}, target: flat)")


if __name__ == "__main__":
    main()
