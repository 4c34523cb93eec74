"""``import vaultkit`` and ``vaultkit --help`` import no heavy SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "hvac", "requests", "pyzipper", "sqlalchemy", "keyring")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _heavy_imported(body: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=HEAVY)],
                         capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_import_vaultkit_is_cheap() -> None:
    assert _heavy_imported("import vaultkit") == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["keys", "--help"]])
def test_cli_help_is_cheap(argv: list[str]) -> None:
    body = (
        "from vaultkit.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert _heavy_imported(body) == []


def test_all_is_complete_and_sorted() -> None:
    import types

    import vaultkit

    public = {n for n in dir(vaultkit)
              if not n.startswith("_") and not isinstance(getattr(vaultkit, n), types.ModuleType)
              and n not in {"annotations", "TYPE_CHECKING", "Any"}}
    assert set(vaultkit.__all__) == public | {"__version__"}
    assert list(vaultkit.__all__) == sorted(vaultkit.__all__)
    for name in vaultkit.__all__:  # the lazy names resolve
        assert getattr(vaultkit, name) is not None


def test_lazy_load_secrets_wrapper_works(monkeypatch) -> None:
    import vaultkit

    monkeypatch.setenv("VK_TEST_VALUE", "v")
    loaded = vaultkit.load_secrets({"X": "env://VK_TEST_VALUE"})
    assert loaded["X"].reveal() == "v"
