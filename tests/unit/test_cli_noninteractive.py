"""Every command that can prompt, run without a terminal (cron, CI): it fails at once with
the documented code (3, configuration) and names what to set instead. No traceback, no
"Password input may be echoed", no "Aborted!"."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from unit.cli_walk import invoke, no_traceback
from unit.test_ca_support import (
    CA_PW,
    FAST_ROUNDS,
    build_ca,
    passphrases,
    vaultkit_cmd,
    write_profiles,
)

PASSPHRASE_VARS = ("VAULTKIT_ROOT_PASSPHRASE", "VAULTKIT_CA_PASSPHRASE",
                   "VAULTKIT_LEAF_PASSPHRASE", "VAULTKIT_P12_PASSPHRASE")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    built = build_ca(tmp_path_factory.mktemp("noninteractive"))
    built.issue("exported", "client", "DNS:exported.vaultkit.internal")
    return built.home.root_dir, built.root_key


@pytest.fixture(scope="module")
def root_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a root and no intermediate yet: where ``intermediate create`` prompts."""
    from vaultkit.ca import CAHome, CertificateAuthority

    work = tmp_path_factory.mktemp("root-only")
    home = CAHome(work / "home")
    write_profiles(home.root_dir)
    CertificateAuthority(home, passphrases=passphrases(), kdf_rounds=FAST_ROUNDS).init_root(
        "Root Only", root_key_out=work / "root.key")
    return home.root_dir


@pytest.fixture(scope="module")
def csr_pending(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A root and an intermediate CSR waiting for ``intermediate sign``."""
    from vaultkit.ca import CAHome, CertificateAuthority

    work = tmp_path_factory.mktemp("csr-pending")
    home = CAHome(work / "home")
    write_profiles(home.root_dir)
    ca = CertificateAuthority(home, passphrases=passphrases(), kdf_rounds=FAST_ROUNDS)
    ca.init_root("Pending Root", root_key_out=work / "root.key")
    ca.create_intermediate("Pending Issuing", permit_dns=["vaultkit.internal"])
    return home.root_dir, work / "root.key"


#: (arguments after ``ca --home HOME``, what the message must name, passphrases given)
CA_CASES = [
    (["init", "--name", "R", "--root-key-out", "{work}/fresh-root.key", "--home",
      "{work}/fresh"], "VAULTKIT_ROOT_PASSPHRASE", {}),
    (["intermediate", "create", "--name", "I", "--home", "{root_only}"],
     "VAULTKIT_CA_PASSPHRASE", {}),
    (["intermediate", "revoke", "--root-key", "{root_key}"], "VAULTKIT_ROOT_PASSPHRASE", {}),
    (["intermediate", "replace", "--root-key", "{root_key}"], "VAULTKIT_ROOT_PASSPHRASE", {}),
    (["intermediate", "sign", "--root-key", "{pending_key}", "--home", "{pending}"],
     "VAULTKIT_ROOT_PASSPHRASE", {}),
    (["issue", "svc", "--san", "DNS:svc.vaultkit.internal"], "VAULTKIT_CA_PASSPHRASE", {}),
    (["issue", "svc", "--san", "DNS:svc.vaultkit.internal", "--encrypt-key"],
     "VAULTKIT_LEAF_PASSPHRASE", {"VAULTKIT_CA_PASSPHRASE": CA_PW}),
    (["issue", "svc", "--san", "DNS:svc.vaultkit.internal", "--p12"],
     "VAULTKIT_P12_PASSPHRASE", {"VAULTKIT_CA_PASSPHRASE": CA_PW}),
    (["renew", "exported"], "VAULTKIT_CA_PASSPHRASE", {}),
    (["revoke", "exported"], "VAULTKIT_CA_PASSPHRASE", {}),
    (["crl"], "VAULTKIT_CA_PASSPHRASE", {}),
    (["crl", "--root-key", "{root_key}"], "VAULTKIT_ROOT_PASSPHRASE",
     {"VAULTKIT_CA_PASSPHRASE": CA_PW}),
    (["export", "exported", "--p12", "--dir", "{leaves}", "--out", "{work}/x.p12"],
     "VAULTKIT_P12_PASSPHRASE", {}),
]


def _check(result_code: int, stderr: str, output: str, names: str) -> None:
    assert result_code == 3, output
    assert names in stderr, stderr
    for noise in ("Traceback", "may be echoed", "Aborted!"):
        assert noise not in output, output


@pytest.mark.parametrize("args, names, given", CA_CASES,
                         ids=[" ".join(c[0][:2]) + f" -> {c[1]}" for c in CA_CASES])
def test_ca_prompts_fail_fast_without_a_terminal(ca: tuple[Path, Path], root_only: Path,
                                                 csr_pending: tuple[Path, Path],
                                                 tmp_path: Path,
                                                 args: list[str], names: str,
                                                 given: dict[str, str]) -> None:
    home, root_key = ca
    fill = {"work": str(tmp_path), "root_key": str(root_key), "root_only": str(root_only),
            "pending": str(csr_pending[0]), "pending_key": str(csr_pending[1]),
            "leaves": str(home.parent / "leaves")}
    argv = ["ca", "--home", str(home), *(a.format(**fill) for a in args)]
    env: dict[str, str | None] = {var: None for var in PASSPHRASE_VARS}
    env.update(given)
    started = time.monotonic()
    result = invoke(argv, env=env, input="")  # CliRunner's stdin is no terminal
    assert time.monotonic() - started < 30
    no_traceback(result)
    _check(result.exit_code, result.stderr, result.output, names)
    assert "keyring" in result.stderr


@pytest.mark.parametrize("command", ["create", "share"])
def test_archive_password_prompt_names_password_stdin(tmp_path: Path, command: str) -> None:
    (tmp_path / "in.txt").write_text("data")
    target = ([str(tmp_path / "o.zip")] if command == "create"
              else ["--store", f"file://{tmp_path / 'store'}"])
    result = invoke(["archive", command, *target, str(tmp_path / "in.txt"),
                     "--password-prompt"], input="")
    no_traceback(result)
    _check(result.exit_code, result.stderr, result.output, "--password-stdin")


@pytest.mark.parametrize("stdin", ["devnull", "closed"])
def test_cron_style_run_with_stdin_closed(ca: tuple[Path, Path], stdin: str) -> None:
    """A real process with stdin on /dev/null, as cron starts it, or with no stdin at all
    (``<&-``: Python's ``sys.stdin`` is then None): ``ca crl`` fails at once."""
    home, _ = ca
    env = {k: v for k, v in os.environ.items() if k not in PASSPHRASE_VARS}
    proc = subprocess.run([*vaultkit_cmd(), "ca", "crl", "--home", str(home)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                          timeout=60, check=False,
                          preexec_fn=(lambda: os.close(0)) if stdin == "closed" else None)
    _check(proc.returncode, proc.stderr, proc.stdout + proc.stderr, "VAULTKIT_CA_PASSPHRASE")
