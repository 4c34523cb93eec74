"""Benchmark: vaultkit's streaming AES-256 zip writer against bsdtar and 7-Zip, and the
asyncio export API under 20 concurrent exports.

Every writer runs in a fresh child process on the same generated JSONL chat log at
deflate level 6 (7zz at -mx=5, its nearest deflate preset, as in research/archives.md).
Wall time is measured here; peak RSS is the writer's ``ru_maxrss``, read by a small
intermediary process (GNU time, or a fresh Python launcher using RUSAGE_CHILDREN).
vaultkit is run again on a larger input to show that its peak RSS does not grow.

    .venv/bin/python benchmarks/bench_archive.py                  # 200 MB, and 1 GB for RSS
    .venv/bin/python benchmarks/bench_archive.py --size 50 --big 0  # quick run
    .venv/bin/python benchmarks/bench_archive.py --size 0 --big 0   # the async part only

Async part (``--async-exports 20 --async-mb 20``): a fresh child process runs 20 chat-log
exports of 20 MB each through ``aexport_chat_log`` to a moto server in *another*
process (moto in-process would compete for the same GIL and measure moto), first one
after another, then all at once while a heartbeat task sleeps 5 ms in a loop and
records how late it wakes (event-loop lag). Targets: lag p99 <= 20 ms and max <= 50 ms
during the concurrent run; aggregate throughput >= 0.9x the sequential run.
``--async-repeat N`` interleaves N rounds of both and reports medians.

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


ASYNC_CHILD = r"""
import asyncio, json, sys, time, uuid
sys.path.insert(0, sys.argv[5])  # tests/, for the fake chat history
from harness.chat_history import chat_history as history
from vaultkit.archive import aexport_chat_log, preload, revoke
from vaultkit.config import AwsSettings, Config
from vaultkit.storage.s3 import S3Store

endpoint, exports, size, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
config = Config(aws=AwsSettings(region="us-east-1", endpoint_url=endpoint))
store = S3Store("bench-" + uuid.uuid4().hex[:12], "bot", config=config, require_tls=False)
store.ensure_bucket()
preload()  # a bot imports the writer at start-up, not inside the measured window

async def heartbeat(stop, lags):
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        lags.append(max(0.0, loop.time() - t - 0.005))

async def phase(concurrent):
    lags, stop = [], asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop, lags))
    start = time.perf_counter()
    if concurrent:
        results = await asyncio.gather(*(aexport_chat_log(history(n, size), store=store)
                                         for n in range(exports)))
    else:
        results = [await aexport_chat_log(history(n, size), store=store)
                   for n in range(exports)]
    seconds = time.perf_counter() - start
    stop.set()
    await beat
    for r in results:
        revoke(r.object_key, store=store)
    lags.sort()
    return {"seconds": seconds, "beats": len(lags), "p50": lags[len(lags) // 2],
            "p99": lags[max(0, int(len(lags) * 0.99) - 1)], "max": lags[-1],
            "bytes": sum(r.size for r in results)}

def median_of(runs):
    def med(values):
        values, mid = sorted(values), len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return {k: med([r[k] for r in runs]) for k in runs[0]}

async def main():
    # Interleaved (seq, conc, seq, conc, ...) so load from other jobs hits both alike.
    seqs, concs = [], []
    for _ in range(repeat):
        seqs.append(await phase(False))
        concs.append(await phase(True))
    print(json.dumps({"sequential": median_of(seqs), "concurrent": median_of(concs)}))

asyncio.run(main())
"""


def bench_async(exports: int, size_mb: int, repeat: int) -> dict[str, dict[str, float]]:
    """Sequential vs concurrent async exports to moto running in its own process."""
    moto_bin = Path(sys.executable).with_name("moto_server")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from harness.servers import free_port, wait_http

    port = free_port()
    server = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(f"{endpoint}/moto-api/", ok_codes=(200, 404))
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        tests_dir = str(Path(__file__).resolve().parents[1] / "tests")
        proc = subprocess.run([sys.executable, "-c", ASYNC_CHILD, endpoint, str(exports),
                               str(size_mb * MB), str(repeat), tests_dir], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"async benchmark failed: {proc.stderr[-2000:]}")
        result: dict[str, dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def report_async(res: dict[str, dict[str, float]], exports: int, size_mb: int) -> None:
    seq, conc = res["sequential"], res["concurrent"]
    ratio = seq["seconds"] / conc["seconds"]
    total = exports * size_mb
    print(f"\nasync: {exports} chat-log exports x {size_mb} MB to moto (separate process); "
          "medians of the rounds")
    print(f"  one after another: {seq['seconds']:7.2f} s  {total / seq['seconds']:6.1f} MB/s  "
          f"loop lag p99 {seq['p99'] * 1000:5.1f} ms, max {seq['max'] * 1000:5.1f} ms")
    print(f"  all at once:       {conc['seconds']:7.2f} s  {total / conc['seconds']:6.1f} MB/s  "
          f"loop lag p50 {conc['p50'] * 1000:5.1f} ms, p99 {conc['p99'] * 1000:5.1f} ms, "
          f"max {conc['max'] * 1000:5.1f} ms over {conc['beats']:.0f} beats")
    ok_lag = conc["p99"] <= 0.020 and conc["max"] <= 0.050
    print(f"  throughput all-at-once / one-after-another: {ratio:.2f}x "
          f"(target >= 0.90: {'met' if ratio >= 0.9 else 'MISSED'}); "
          f"lag target p99 <= 20 ms, max <= 50 ms: {'met' if ok_lag else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="input size in MB (default 200)")
    parser.add_argument("--big", type=int, default=1000,
                        help="second input size in MB for the flat-RSS check (0 skips)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per writer (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--async-exports", type=int, default=20,
                        help="concurrent async exports (0 skips the async part)")
    parser.add_argument("--async-mb", type=int, default=20, help="MB of messages per export")
    parser.add_argument("--async-repeat", type=int, default=1,
                        help="interleaved sequential/concurrent rounds (medians reported)")
    opts = parser.parse_args()
    results: list[Result] = []
    if opts.size:
        results = bench_writers(opts)
    if opts.async_exports and opts.async_mb:
        res = bench_async(opts.async_exports, opts.async_mb, opts.async_repeat)
        report_async(res, opts.async_exports, opts.async_mb)
    if opts.json:
        opts.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


def bench_writers(opts: argparse.Namespace) -> list[Result]:

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
    return results


if __name__ == "__main__":
    main()
