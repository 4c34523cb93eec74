"""Independent judges for CA tests (no tests here): pkilint in-process, ``openssl verify``.

pkilint runs through its own command-line entry points, in this process, so linting
fifty certificates costs milliseconds each rather than a Python start-up each.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from harness.servers import find_binary


def binary(name: str) -> str:
    found = find_binary(name)
    if found is None:
        pytest.skip(f"{name} not installed: apt install {name}")
    return found


def _run_pkilint(tool: str, *args: str | Path) -> list[dict[str, str]]:
    import importlib

    main = importlib.import_module(f"pkilint.bin.{tool}").main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["lint", *[str(a) for a in args], "-s", "NOTICE", "-f", "JSON"])
    return [
        {"code": d["code"], "message": d.get("message") or "", "at": r["node_path"]}
        for r in json.loads(out.getvalue())["results"] for d in r["finding_descriptions"]
    ]


def pkilint(tool: str, *args: str | Path, allow_spiffe: bool = True) -> list[dict[str, str]]:
    """Findings at NOTICE or above; minus, for ``spiffe://`` URIs only, pkilint's documented
    false positive (validators 0.22 ``url()`` knows only ftp/http/... schemes, research B1)."""
    findings = _run_pkilint(tool, *args)
    if not allow_spiffe:
        return findings
    return [f for f in findings if not (f["code"] == "pkix.invalid_uri_syntax"
                                        and "spiffe://" in f["message"])]


def lint_cert(path: Path) -> list[dict[str, str]]:
    return pkilint("lint_pkix_cert", path)


def lint_pair(signer: Path, signee: Path) -> list[dict[str, str]]:
    return pkilint("lint_pkix_signer_signee_cert_chain", signer, signee)


def lint_crl(path: Path) -> list[dict[str, str]]:
    return pkilint("lint_crl", "-t", "CRL", "-p", "PKIX", path)


def openssl_verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("openssl"), "verify", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=120, check=False)


def verified_ok(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The files ``openssl verify`` printed ``FILE: OK`` for (it takes several at once)."""
    return {line[:-4] for line in proc.stdout.splitlines() if line.endswith(": OK")}


def bundle(target: Path, *parts: Path) -> Path:
    target.write_bytes(b"".join(p.read_bytes() for p in parts))
    return target
