"""Import cost: ``python -c "import vaultkit"`` against a bare ``python -c pass`` (target:
under 50 ms more; ``import vaultkit`` imports neither urllib3 nor boto3).

Runs the commands interleaved in one process (absolute times on shared machines
are noise; the ratio is what we compare) and prints medians and ratios.

    python benchmarks/import_time.py [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import vaultkit": [sys.executable, "-c", "import vaultkit"],
    "vaultkit --help": [sys.executable, "-c",
                        "from vaultkit.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass"],
    "import boto3 (reference)": [sys.executable, "-c", "import boto3"],
    "import hvac (reference)": [sys.executable, "-c", "import hvac"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    # An installed wheel ships bytecode; an editable install under PYTHONDONTWRITEBYTECODE=1
    # (set on these machines) would recompile vaultkit on every run. Compile it once first.
    import vaultkit

    compileall.compile_dir(str(Path(vaultkit.__file__).parent), quiet=1)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - t0)
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<28}{'median ms':>12}{'ratio to bare python':>24}")
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"{name:<28}{med * 1000:>12.1f}{med / base:>23.2f}x")
    over = (statistics.median(samples["import vaultkit"]) - base) * 1000
    print(f"import vaultkit over a bare interpreter: {over:.1f} ms "
          f"(target < 50 ms: {'PASS' if over < 50 else 'MISS'})")


if __name__ == "__main__":
    main()
