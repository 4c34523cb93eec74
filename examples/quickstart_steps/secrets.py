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
