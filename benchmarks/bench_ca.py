"""Benchmark the CA. Run: ``.venv/bin/python benchmarks/bench_ca.py [--leaves N] [--runs N]``.

1. **The kill switch.** ``vaultkit ca intermediate replace --root-key`` re-issuing N
   leaves (default 1,000) after the intermediate is killed, against what an operator
   would script with OpenSSL for the same work: a shell loop running ``openssl req
   -newkey ec`` + ``openssl x509 -req`` per leaf, with the CA key encrypted at the
   same 600,000 PBKDF2-HMAC-SHA256 rounds (OpenSSL decrypts it once per leaf, as such a
   loop does). vaultkit's figure includes revoking the old intermediate, re-signing the
   root CRL, creating and signing the new intermediate (its key encrypted at 600,000
   rounds), every leaf's key, certificate, inventory row and files, and both CRLs.
   ``--openssl-sample K`` times the OpenSSL loop over K leaves and scales it to N (each
   iteration is the same independent work); the output says when it did. Target: at
   least 20x.
2. A CRL with 100,000 revoked entries (read from the inventory, signed, written PEM+DER),
   target 2 s or less; and revocation cost with 1,000 and 100,000 certificates in the
   inventory (target: flat).
3. One leaf through the CLI (``vaultkit ca issue``) against ``openssl req`` + ``openssl
   x509 -req`` with an equally encrypted CA key, wall time, interleaved, medians: reported
   with no target.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vaultkit
from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases
from vaultkit.ca.certs import cert_pem, ski_hex
from vaultkit.ca.inventory import Inventory, serial_hex

CA_PW = "benchmark intermediate passphrase"
ROOT_PW = "benchmark root passphrase!"
ENV = {**os.environ, "VAULTKIT_CA_PASSPHRASE": CA_PW, "VAULTKIT_ROOT_PASSPHRASE": ROOT_PW}
EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
       "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
       "authorityKeyIdentifier=keyid\nsubjectAltName=DNS:leaf.bench.internal\n")


def vaultkit_bin() -> str:
    return shutil.which("vaultkit", path=str(Path(sys.executable).parent)) or "vaultkit"


def make_ca(work: Path, kdf_rounds: int) -> CertificateAuthority:
    ca = CertificateAuthority(CAHome(work / "home"), kdf_rounds=kdf_rounds,
                              passphrases=StaticPassphrases({"root": ROOT_PW,
                                                             "intermediate": CA_PW}))
    ca.init_root("Bench Root", root_key_out=work / "root.key")
    ca.create_intermediate("Bench Issuing", permit_dns=["bench.internal"])
    ca.sign_intermediate(work / "root.key")
    return ca


def openssl_leaf_cmds(ossl: Path, ca_cert: Path, ca_key: Path, passin: list[str],
                      tag: str) -> list[list[str]]:
    return [
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(ossl / f"{tag}{{i}}.key"), "-subj", "/CN=leaf{i}",
         "-out", str(ossl / f"{tag}{{i}}.csr")],
        ["openssl", "x509", "-req", "-in", str(ossl / f"{tag}{{i}}.csr"), "-CA", str(ca_cert),
         "-CAkey", str(ca_key), *passin, "-days", "90", "-sha256", "-set_serial",
         "0x{i}1234567", "-extfile", str(ossl / "ext.cnf"), "-out", str(ossl / f"{tag}{{i}}.pem")],
    ]


def bench_kill_switch(work: Path, leaves: int, sample: int) -> dict[str, float]:
    ca = make_ca(work / "kill", kdf_rounds=600_000)
    signer = ca.signer()
    for i in range(leaves):  # the fleet under intermediate 1 (not timed)
        request = ca.leaf_request(f"svc{i}", profile="server",
                                  sans=[f"DNS:svc{i}.bench.internal"])
        ca.issue_with(signer, request, out_dir=work / "kill" / "fleet")
    ca.close()
    ossl = work / "kill-openssl"
    ossl.mkdir()
    (ossl / "ext.cnf").write_text(EXT)
    inter_key = work / "kill" / "openssl-inter.key"  # a copy: replace retires the original
    shutil.copy(ca.home.intermediate_key, inter_key)
    inter_cert = work / "kill" / "openssl-inter.pem"
    shutil.copy(ca.home.intermediate_cert, inter_cert)

    t0 = time.perf_counter()
    subprocess.run([vaultkit_bin(), "ca", "--home", str(ca.home.root_dir), "intermediate",
                    "replace", "--root-key", str(work / "kill" / "root.key"), "--out",
                    str(work / "kill" / "reissued"), "--json"], env=ENV, check=True,
                   stdout=subprocess.DEVNULL)
    vaultkit_s = time.perf_counter() - t0
    with Inventory(ca.home.inventory) as inv:
        reissued = sum(1 for r in inv.all() if r.kind == "leaf" and r.renewed_from)
    assert reissued == leaves, (reissued, leaves)

    cmds = openssl_leaf_cmds(ossl, inter_cert, inter_key,
                             ["-passin", "env:VAULTKIT_CA_PASSPHRASE"], "k")
    # temp paths hold no shell metacharacters; "${i}" is the loop counter
    script = "; ".join(" ".join(f'"{c}"' for c in cmd) for cmd in cmds).replace("{i}", "${i}")
    loop = f"for i in $(seq 1 {sample}); do {script}; done"
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", loop], env=ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    openssl_sample_s = time.perf_counter() - t0
    openssl_s = openssl_sample_s * leaves / sample
    return {"kill_switch_leaves": float(leaves), "kill_switch_vaultkit_s": vaultkit_s,
            "kill_switch_vaultkit_per_leaf_ms": vaultkit_s / leaves * 1000,
            "kill_switch_openssl_sample_leaves": float(sample),
            "kill_switch_openssl_s": openssl_s,
            "kill_switch_openssl_per_leaf_ms": openssl_sample_s / sample * 1000,
            "kill_switch_speedup": openssl_s / vaultkit_s}


def bench_single_leaf(work: Path, runs: int) -> dict[str, float]:
    """One leaf: CLI vs OpenSSL, interleaved rounds, median wall time (no target)."""
    compileall.compile_dir(Path(vaultkit.__file__).parent, quiet=1)  # as a wheel install does
    ca = make_ca(work / "one", kdf_rounds=600_000)
    ossl = work / "one-openssl"
    ossl.mkdir()
    (ossl / "ext.cnf").write_text(EXT)
    cases = {
        "vaultkit": [[vaultkit_bin(), "ca", "--home", str(ca.home.root_dir), "issue", "leaf{i}",
                      "--profile", "server", "--san", "DNS:leaf{i}.bench.internal", "--out",
                      str(work / "one-out")]],
        "openssl": openssl_leaf_cmds(ossl, ca.home.intermediate_cert, ca.home.intermediate_key,
                                     ["-passin", "env:VAULTKIT_CA_PASSPHRASE"], "o"),
    }
    ca.close()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):
        for name, cmds in cases.items():
            t0 = time.perf_counter()
            for cmd in cmds:
                subprocess.run([c.replace("{i}", str(i)) for c in cmd], env=ENV, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - t0)
    cli, openssl = statistics.median(samples["vaultkit"]), statistics.median(samples["openssl"])
    return {"single_leaf_cli_s": cli, "single_leaf_openssl_s": openssl,
            "single_leaf_ratio": cli / openssl}


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
    fill(ca.inventory, cert_pem(inter).decode(), ski_hex(inter), 100_000, 1 << 100)
    with ca.inventory.transaction() as db:
        db.execute("UPDATE certs SET status='revoked', revoked_at='2025-06-01T00:00:00Z', "
                   "reason='keyCompromise' WHERE name LIKE 'bulk%'")
    t0 = time.perf_counter()
    crls = ca.generate_crl()
    results["crl_100k_entries_s"] = time.perf_counter() - t0
    results["crl_100k_entries_count"] = float(len(crls["intermediate"]))
    for size in (1_000, 100_000):
        ca2 = make_ca(work / f"rev{size}", kdf_rounds=1000)
        inter2 = ca2.intermediate_cert()
        fill(ca2.inventory, cert_pem(inter2).decode(), ski_hex(inter2), size, 1 << 120)
        serials = [serial_hex((1 << 120) + i) for i in range(0, size, size // 200)][:200]
        t0 = time.perf_counter()
        for s in serials:
            ca2.revoke(s, reason="superseded", regenerate_crl=False)
        results[f"revoke_per_op_{size}_ms"] = (time.perf_counter() - t0) / len(serials) * 1000
        ca2.close()
    results["revoke_ratio_100k_vs_1k"] = (results["revoke_per_op_100000_ms"]
                                          / results["revoke_per_op_1000_ms"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--openssl-sample", type=int, default=None,
                        help="Time the OpenSSL loop over this many leaves and scale to --leaves.")
    parser.add_argument("--runs", type=int, default=11, help="Rounds of the single-leaf case.")
    parser.add_argument("--parts", default="kill,crl,single",
                        help="Comma-separated subset of kill, crl, single.")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    sample = min(args.openssl_sample or args.leaves, args.leaves)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vk-bench-ca-") as tmp:
        work = Path(tmp)
        if "kill" in parts:
            results.update(bench_kill_switch(work, args.leaves, sample))
        if "crl" in parts:
            results.update(bench_crl_and_revoke(work))
        if "single" in parts:
            results.update(bench_single_leaf(work, args.runs))
    print(json.dumps({k: round(v, 4) for k, v in results.items()}, indent=2))
    if "kill" in parts:
        scaled = (f" (OpenSSL timed over {sample} leaves and scaled)"
                  if sample != args.leaves else "")
        print(f"kill switch, {args.leaves} leaves: vaultkit "
              f"{results['kill_switch_vaultkit_s']:.1f} s, OpenSSL loop "
              f"{results['kill_switch_openssl_s']:.1f} s{scaled}: "
              f"{results['kill_switch_speedup']:.1f}x faster (target >= 20x)")
    if "crl" in parts:
        print(f"CRL with 100k entries: {results['crl_100k_entries_s']:.2f} s (target <= 2 s); "
              f"revocation {results['revoke_per_op_1000_ms']:.2f} ms at 1k, "
              f"{results['revoke_per_op_100000_ms']:.2f} ms at 100k entries "
              f"(ratio {results['revoke_ratio_100k_vs_1k']:.2f}, target: flat)")
    if "single" in parts:
        print(f"one leaf: CLI {results['single_leaf_cli_s']:.3f} s, OpenSSL "
              f"{results['single_leaf_openssl_s']:.3f} s ({results['single_leaf_ratio']:.2f}x; "
              "no target)")


if __name__ == "__main__":
    main()
