"""Benchmark: vaultkit's streaming AES-256 zip writer against bsdtar and 7-Zip.

Every writer runs in a fresh child process on the same generated JSONL chat log at
deflate level 6 (7zz at -mx=5, its nearest deflate preset, as in research/archives.md).
Wall time is measured here; peak RSS is the writer's ``ru_maxrss``, read by a small
intermediary process (GNU time, or a fresh Python launcher using RUSAGE_CHILDREN).
vaultkit is run again on a larger input to show that its peak RSS does not grow.

    .venv/bin/python benchmarks/bench_archive.py                  # 200 MB, and 1 GB for RSS
    .venv/bin/python benchmarks/bench_archive.py --size 50 --big 0  # quick run

The password reaches vaultkit through an environment variable; 7zz and bsdtar only take
it on argv (``-p``/``--passphrase``), which is acceptable for a throwaway benchmark
password and is exactly why vaultkit never shells out with one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PASSWORD = "BENCH-PASSW-ORD00-00000-00000"
MB = 1_000_000
VOCAB = (
    "the a to and of I you it is that in for on this we have be with not but are what "
    "just so can do my was if your at me like get know about think all one out will "
    "good yes no lol ok thanks deploy server build test merge review ticket release "
    "meeting tomorrow today bug fix crash log vault secret token password link export "
    "channel guild voice stream game raid boss loot patch update notes coffee lunch"
)

VAULTKIT_CHILD = """
import os, sys
from vaultkit.archive import write_archive
threads = int(sys.argv[3])
write_archive([sys.argv[1]], sys.argv[2], password=os.environ["VK_BENCH_PASSWORD"],
              compresslevel=6, threads=threads)
"""


@dataclass
class Result:
    writer: str
    input_mb: float
    seconds: float
    mb_per_s: float
    peak_rss_mib: float
    output_ratio: float


def generate_chat_log(path: Path, size: int, seed: int = 6) -> None:
    """A realistic JSONL chat log: ids, timestamps, authors, channel, text from a vocabulary."""
    rnd = random.Random(seed)
    vocab = VOCAB.split()
    authors = [f"user{n:05d}" for n in range(500)]
    block = bytearray()
    i = 0
    t = 1_700_000_000
    while len(block) < 16 * MB:  # 16 MB of distinct lines, then repeated with new ids
        t += rnd.randint(1, 90)
        words = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(3, 40)))
        line = {"id": i, "ts": t, "author": rnd.choice(authors), "channel": rnd.randint(1, 40),
                "text": words, "reactions": rnd.randint(0, 3)}
        block += (json.dumps(line) + "\n").encode()
        i += 1
    with path.open("wb") as fh:
        written = 0
        while written < size:
            chunk = bytes(block[: size - written])
            fh.write(chunk)
            written += len(chunk)


#: Fallback launcher: a fresh, small Python that runs the writer and reports its
#: children's peak RSS with getrusage(RUSAGE_CHILDREN).
LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one writer process.

    A child's ru_maxrss includes the memory image it was forked from (Linux takes the
    high-water mark of the pre-exec mm), so measuring a writer as a direct child of this
    process would add this process's RSS to it. The writer is therefore started by a
    tiny intermediary: GNU time (``%M``, ~1 MiB floor) when installed, else a fresh
    Python launcher reading RUSAGE_CHILDREN (~10 MiB floor, reported as ``floor``).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        if GNU_TIME:
            cmd = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *args]
        else:
            cmd = [sys.executable, "-c", LAUNCHER, rss_file.name, *args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{args[0]} failed ({proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace')[-2000:]}")
        kib = int(rss_file.read().strip().splitlines()[-1])
    return seconds, kib / 1024


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def bench(name: str, args: list[str], src: Path, out: Path, repeat: int,
          env: dict[str, str] | None = None) -> Result:
    runs = []
    for _ in range(repeat):
        out.unlink(missing_ok=True)
        runs.append(run_child(args, env))
    seconds = sorted(r[0] for r in runs)[len(runs) // 2]
    rss = max(r[1] for r in runs)
    size = src.stat().st_size
    return Result(name, size / MB, round(seconds, 2), round(size / MB / seconds, 1),
                  round(rss, 1), round(out.stat().st_size / size, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="input size in MB (default 200)")
    parser.add_argument("--big", type=int, default=1000,
                        help="second input size in MB for the flat-RSS check (0 skips)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per writer (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vk-bench-"))
    try:
        src = workdir / "chatlog.jsonl"
        t0 = time.perf_counter()
        generate_chat_log(src, opts.size * MB)
        print(f"generated {opts.size} MB chat log in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        env = dict(os.environ, VK_BENCH_PASSWORD=PASSWORD)
        out = workdir / "out.zip"
        results = []
        for threads in (2, 1):
            results.append(bench(f"vaultkit (threads={threads})",
                                 [sys.executable, "-c", VAULTKIT_CHILD, str(src), str(out),
                                  str(threads)], src, out, opts.repeat, env))
        bsdtar = shutil.which("bsdtar")
        if bsdtar:
            results.append(bench("bsdtar zip aes256", [
                bsdtar, "--format", "zip", "--options",
                "zip:encryption=aes256,zip:compression-level=6", "--passphrase", PASSWORD,
                "-cf", str(out), "-C", str(workdir), src.name], src, out, opts.repeat))
        sevenzip = shutil.which("7zz")
        if sevenzip:
            results.append(bench("7zz -tzip -mem=AES256 -mx=5 -mmt=1", [
                sevenzip, "a", "-tzip", "-mem=AES256", "-mx=5", "-mmt=1", f"-p{PASSWORD}",
                str(out), str(src)], src, out, opts.repeat))
        if opts.big:
            src.unlink()
            generate_chat_log(src, opts.big * MB)
            results.append(bench("vaultkit (threads=2)", [
                sys.executable, "-c", VAULTKIT_CHILD, str(src), str(out), "2"],
                src, out, 1, env))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    floor = run_child(["/bin/true"])[1]
    print(f"RSS floor of the measuring launcher (/bin/true): {floor:.1f} MiB", file=sys.stderr)
    ref = {r.writer: r for r in results if r.input_mb == opts.size}
    base = ref.get("bsdtar zip aes256")
    print(f"\n{'writer':38} {'input MB':>8} {'s':>7} {'MB/s':>7} {'x bsdtar':>8} "
          f"{'peak RSS MiB':>12} {'out/in':>7}")
    for r in results:
        ratio = f"{r.mb_per_s / base.mb_per_s:.2f}" if base and r.input_mb == opts.size else "-"
        print(f"{r.writer:38} {r.input_mb:8.0f} {r.seconds:7.2f} {r.mb_per_s:7.1f} {ratio:>8} "
              f"{r.peak_rss_mib:12.1f} {r.output_ratio:7.3f}")
    if opts.json:
        opts.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
