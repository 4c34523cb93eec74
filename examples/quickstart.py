"""vaultkit end to end on embedded defaults: no servers, local keys, local files.

    python examples/quickstart.py            # everything goes to a fresh temp dir
    python examples/quickstart.py --keep     # keep the temp dir and print its path

Each capability contributes a ``step`` in ``examples/quickstart_steps/``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

STEPS = [
    ("foundation", "Local key provider and doctor"),
    ("secrets", "Secrets at boot: load_secrets from an encrypted local file and the environment"),
    ("fields", "Field encryption: a SQLite column encrypted under local://, found by blind index"),
    ("ca", "Offline root, intermediate and an mTLS leaf on a temporary CA home"),
    ("archive", "Chat-log export: private AES zip on LocalStore, link + password"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vaultkit-quickstart-"))
    # Embedded defaults: keys and config live under the temp dir, never in the user's home.
    os.environ["VAULTKIT_HOME"] = str(workdir / "home")
    os.environ["VAULTKIT_LOCAL_KEYS_STORE"] = "file"
    for var in ("VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN"):
        os.environ.pop(var, None)
    os.chdir(workdir)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        for number, (name, title) in enumerate(STEPS, 1):
            print(f"\n[{number}/{len(STEPS)}] {title}")
            module = importlib.import_module(f"quickstart_steps.{name}")
            module.step(workdir, lambda line: print(f"    {line}"))
        print("\nquickstart finished: every step ran on embedded defaults, no servers.")
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
