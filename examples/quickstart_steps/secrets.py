"""Quickstart step: secrets at boot on embedded defaults (env + an encrypted file, no servers)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable


def step(workdir: pathlib.Path, say: Callable[[str], None]) -> None:
    from vaultkit.keys.memory import MemoryKeyProvider
    from vaultkit.secrets import install_redaction, load_secrets
    from vaultkit.secrets.envfile import encrypt_document, write_document

    # 1. An encrypted secrets file: values encrypted one by one, keys readable.
    kek = MemoryKeyProvider.named("quickstart")
    path = workdir / "app-secrets.enc.json"
    write_document(path, encrypt_document(
        {"db": {"password": os.urandom(12).hex()}, "api_token": os.urandom(16).hex()}, kek))
    say(f"wrote {path.name}: keys readable, every value AES-256-GCM under memory://quickstart")

    # 2. Boot: references from a mapping (could be [secrets] in vaultkit.toml or env vars).
    os.environ.setdefault("QUICKSTART_MODE", "demo")
    secrets = load_secrets({
        "DB_PASSWORD": f"file://{path}#db/password",
        "API_TOKEN": f"file://{path}#api_token",
        "MODE": "env://QUICKSTART_MODE",
        "SENTRY_DSN": "env://QUICKSTART_SENTRY_DSN?optional=1",
    }, deadline=5)
    say(f"loaded {sorted(secrets)} in {len(secrets.plan.calls)} calls; "
        f"optional and absent: {sorted(secrets.absent)}")
    say(f"values stay redacted: DB_PASSWORD = {secrets['DB_PASSWORD']!r}")

    # 3. Logs never show them.
    install_redaction(secrets)
    say("installed the log redaction filter; `vaultkit secrets check` reports OK/FAIL per name")

    # 4. What `vaultkit run` does for a child: restart it when a value changes.
    supervise(workdir, say)


CHILD = """
import hashlib, os, sys, time
with open(sys.argv[1], "a") as fh:
    fh.write(hashlib.sha256(os.environ["TOKEN"].encode()).hexdigest()[:8] + "\\n")
time.sleep(30)
"""


def supervise(workdir: pathlib.Path, say: Callable[[str], None]) -> None:
    import sys
    import threading
    import time

    from vaultkit.secrets import MemorySource, load_secrets
    from vaultkit.secrets.supervisor import Supervisor, SupervisorPolicy

    store = MemorySource()  # stands in for Vault: a value that will be rotated
    store.put("app", '{"token": "first"}')
    loaded = load_secrets({"TOKEN": "memory://app#token"}, sources=[store])
    log = workdir / "child-starts"
    sup = Supervisor(loaded, [sys.executable, "-c", CHILD, str(log)],
                     SupervisorPolicy(refresh=0.2, grace=2), say=lambda text: None)
    thread = threading.Thread(target=sup.run)
    thread.start()

    def starts() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    end = time.monotonic() + 20
    while starts() < 1 and time.monotonic() < end:
        time.sleep(0.05)
    store.put("app", '{"token": "rotated"}')
    while starts() < 2 and time.monotonic() < end:
        time.sleep(0.05)
    sup.stop()
    thread.join(20)
    log.unlink()
    say(f"supervisor: the child was started {sup.events.count('start')} times "
        f"(a rotated value restarts it, as `vaultkit run` does: {sup.events})")
