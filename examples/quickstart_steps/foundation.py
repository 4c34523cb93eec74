"""Foundation: a local key provider (a 0600 key file here) and ``vaultkit doctor``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from vaultkit.cli import cli
from vaultkit.keys import get_key_provider


def step(workdir: Path, say: Callable[[str], None]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "init-local", "default"])
    say(result.output.strip())
    provider = get_key_provider("local://default")
    dk = provider.generate_data_key(context={"app": "quickstart"})
    same = provider.decrypt_data_key(dk.wrapped, context={"app": "quickstart"}) == dk.plaintext
    say(f"local://default wrapped a 256-bit data key into {len(dk.wrapped)} bytes; "
        f"unwrap round trip ok: {same}; data key prints as {dk.plaintext}")
    report = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    say(f"doctor: config={report['config']}, vault configured={report['vault']['configured']}, "
        f"keys={[(k['uri'], k['ok']) for k in report['keys']]}")
