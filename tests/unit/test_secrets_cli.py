"""``vaultkit secrets check|plan|get|encrypt|decrypt|edit`` and ``vaultkit run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.canary import LeakCanary
from vaultkit.cli import cli
from vaultkit.cli.run import child_environment
from vaultkit.keys.memory import MemoryKeyProvider
from vaultkit.secrets import memory_source
from vaultkit.secrets.envfile import META, decrypt_document, read_document

VAULTKIT = str(Path(sys.executable).parent / "vaultkit")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_reports_each_name_and_fails(runner: CliRunner, leak_canary: LeakCanary,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    value = leak_canary.new()
    monkeypatch.setenv("VK_CLI_OK", value)
    memory_source().put("cli-json", json.dumps({"password": leak_canary.new()}))
    args = ["secrets", "check", "-s", "OK=env://VK_CLI_OK", "-s", "MISSING=env://VK_NOPE",
            "-s", "NOKEY=memory://cli-json#user", "-s", "BAD=vault://x"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    out = result.output
    assert "OK    OK  env://VK_CLI_OK" in out
    assert "FAIL  MISSING  env://VK_NOPE: not_found" in out
    assert "FAIL  NOKEY" in out and "FAIL  BAD" in out
    assert "1/4 secrets OK" in out
    leak_canary.watch_text(out)

    result = runner.invoke(cli, [*args, "--json"])
    report = json.loads(result.output)
    assert report["ok"] is False
    assert {r["name"]: r["ok"] for r in report["secrets"]} == {
        "OK": True, "MISSING": False, "NOKEY": False, "BAD": False}
    leak_canary.watch_text(result.output)


def test_check_ok_exit_zero(runner: CliRunner, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_CLI_A", "a-value")
    spec = tmp_path / "spec.toml"
    spec.write_text('[secrets]\nA = "env://VK_CLI_A"\nB = "env://VK_UNSET?optional=1"\n')
    result = runner.invoke(cli, ["secrets", "check", "--spec", str(spec)])
    assert result.exit_code == 0, result.output
    assert "optional, absent" in result.output and "a-value" not in result.output


def test_check_reads_config(runner: CliRunner, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_CLI_CFG", "x1")
    cfg = tmp_path / "vaultkit.toml"
    cfg.write_text('[secrets]\nCFG = "env://VK_CLI_CFG"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "secrets", "check"])
    assert result.exit_code == 0 and "OK    CFG" in result.output


def test_plan_prints_batched_calls(runner: CliRunner) -> None:
    args = ["secrets", "plan"]
    for i in range(45):
        args += ["-s", f"SM{i}=awssm://app/s{i}#k"]
    for i in range(12):
        args += ["-s", f"P{i}=ssm:///app/p{i}"]
    args += ["-s", "U=vault+dyn://database/creds/app#username",
             "-s", "P=vault+dyn://database/creds/app#password"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "59 names -> 58 fetch units -> 6 API calls" in result.output
    assert result.output.count("BatchGetSecretValue") == 3
    assert result.output.count("GetParameters(WithDecryption)") == 2
    js = json.loads(runner.invoke(cli, [*args, "--json"]).output)
    assert js["counts"] == {"awssm BatchGetSecretValue": 3, "ssm GetParameters(WithDecryption)": 2,
                            "vault+dyn GET": 1}


def test_plan_shows_the_vault_batch(runner: CliRunner) -> None:
    args = ["secrets", "plan"]
    for i in range(50):
        args += ["-s", f"S{i}=vault://kv/app/s{i}#v"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "50 names -> 50 fetch units -> 1 API calls (the 50 Vault GETs in one parallel" \
        in result.output
    assert "vault: GET x50 (in parallel over 16 connections)" in result.output


def test_plan_flags_invalid(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["secrets", "plan", "-s", "X=nope://y"])
    assert result.exit_code == 1 and "INVALID X" in result.output


def test_get_needs_reveal(runner: CliRunner, leak_canary: LeakCanary,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    value = leak_canary.new()
    monkeypatch.setenv("VK_CLI_GET", value)
    result = runner.invoke(cli, ["secrets", "get", "G", "-s", "G=env://VK_CLI_GET"])
    assert result.exit_code == 2 and "--reveal" in result.output
    leak_canary.watch_text(result.output)
    result = runner.invoke(cli, ["secrets", "get", "G", "-s", "G=env://VK_CLI_GET", "--reveal"])
    assert result.exit_code == 0 and result.output == value + "\n"
    result = runner.invoke(cli, ["secrets", "get", "H", "-s", "G=env://X", "--reveal"])
    assert result.exit_code == 3


def test_encrypt_decrypt_files(runner: CliRunner, tmp_path: Path,
                               leak_canary: LeakCanary) -> None:
    pw = leak_canary.new()
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"db": {"password": pw}, "token": "t-1"}))
    MemoryKeyProvider.named("cli-envfile")
    result = runner.invoke(cli, ["secrets", "encrypt", str(path),
                                 "--key-provider", "memory://cli-envfile"])
    assert result.exit_code == 0, result.output
    assert pw not in path.read_text() and META in path.read_text()
    assert runner.invoke(cli, ["secrets", "encrypt", str(path), "--key-provider",
                               "memory://cli-envfile"]).exit_code == 3  # already encrypted
    result = runner.invoke(cli, ["secrets", "decrypt", str(path)])
    assert result.exit_code == 2 and pw not in result.output
    out = tmp_path / "plain.json"
    result = runner.invoke(cli, ["secrets", "decrypt", str(path), "-o", str(out)])
    assert result.exit_code == 0 and oct(out.stat().st_mode & 0o777) == "0o600"
    assert json.loads(out.read_text())["db"]["password"] == pw
    out.unlink()
    result = runner.invoke(cli, ["secrets", "decrypt", str(path), "--reveal"])
    assert json.loads(result.output)["token"] == "t-1"
    result = runner.invoke(cli, ["secrets", "check", "-s", f"PW=file://{path}#db/password"])
    assert result.exit_code == 0
    leak_canary.watch_path(path)


def test_edit_reencrypts_changes_and_leaves_no_plaintext(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        leak_canary: LeakCanary) -> None:
    from vaultkit.secrets.envfile import encrypt_document, write_document

    kek = MemoryKeyProvider.named("cli-edit")
    keep, old = leak_canary.new(), leak_canary.new()
    path = tmp_path / "s.enc.json"
    write_document(path, encrypt_document({"keep": keep, "rotate": old}, kek))
    before = read_document(path)
    seen = tmp_path / "seen-path"
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, os, stat, sys\n"
        "p = sys.argv[1]\n"
        f"open({str(seen)!r}, 'w').write(p + ' ' + oct(os.stat(p).st_mode & 0o777)"
        " + ' ' + oct(os.stat(os.path.dirname(p)).st_mode & 0o777))\n"
        "d = json.load(open(p))\n"
        "d['rotate'] = 'new-value'\n"
        "d['added'] = 'x'\n"
        "json.dump(d, open(p, 'w'))\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    result = runner.invoke(cli, ["secrets", "edit", str(path)])
    assert result.exit_code == 0, result.output
    assert "changed: added, rotate" in result.output
    tmp_file, file_mode, dir_mode = seen.read_text().split()
    assert (file_mode, dir_mode) == ("0o600", "0o700")
    assert not Path(tmp_file).exists() and not Path(tmp_file).parent.exists()
    after = read_document(path)
    assert after["keep"] == before["keep"]  # unchanged value, unchanged ciphertext
    assert after["rotate"] != before["rotate"]
    assert decrypt_document(after) == {"keep": keep, "rotate": "new-value", "added": "x"}

    monkeypatch.setenv("EDITOR", f"{sys.executable} -c 'import sys; sys.exit(3)'")
    result = runner.invoke(cli, ["secrets", "edit", str(path)])
    assert result.exit_code == 3 and "unchanged" in result.output
    leak_canary.watch_path(path)
    leak_canary.watch_text(result.output)


def test_child_environment_strips_credentials() -> None:
    base = {"PATH": "/bin", "HOME": "/h", "VAULT_TOKEN": "t", "BAO_TOKEN": "b",
            "VAULT_APPROLE_SECRET_ID": "s", "MY_SECRET_ID": "m"}
    env = child_environment({"A": "1"}, pristine=False, keep_credentials=False,
                            secret_id_env="MY_SECRET_ID", base=base)
    assert env == {"PATH": "/bin", "HOME": "/h", "A": "1"}
    env = child_environment({"A": "1"}, pristine=True, keep_credentials=False, base=base)
    assert env == {"PATH": "/bin", "A": "1"}
    env = child_environment({"A": "1"}, pristine=False, keep_credentials=True, base=base)
    assert env["VAULT_TOKEN"] == "t"


def _run(args: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VAULTKIT, *args], env=env, capture_output=True, text=True,
                          timeout=60, **kw)  # type: ignore[call-overload]


def test_run_passes_secrets_and_exit_code(tmp_path: Path, leak_canary: LeakCanary) -> None:
    value = leak_canary.new()
    env = {**os.environ, "VK_RUN_SRC": value, "VAULT_TOKEN": "parent-token"}
    check = ("import os, sys; "
             f"ok = os.environ.get('DB_PW') == {value!r}; "
             "tok = 'VAULT_TOKEN' in os.environ; "
             "home = 'HOME' in os.environ; "
             "sys.exit(10 * ok + tok + 2 * home)")
    base = ["run", "-s", "DB_PW=env://VK_RUN_SRC", "-s", "OTHER=env://VK_RUN_SRC"]
    r = _run([*base, "--", sys.executable, "-c", check], env)
    assert r.returncode == 12, r.stderr  # secret in, token stripped, HOME kept
    r = _run([*base, "--keep-credentials", "--", sys.executable, "-c", check], env)
    assert r.returncode == 13
    r = _run([*base, "--pristine", "--", sys.executable, "-c", check], env)
    assert r.returncode == 10
    only = "import os, sys; sys.exit(('OTHER' in os.environ) + 2 * ('DB_PW' in os.environ))"
    r = _run([*base, "--only", "DB_PW", "--", sys.executable, "-c", only], env)
    assert r.returncode == 2
    for text in (r.stdout, r.stderr):
        leak_canary.watch_text(text)


def test_run_fails_before_starting_the_child(tmp_path: Path, leak_canary: LeakCanary) -> None:
    marker = tmp_path / "started"
    r = _run(["run", "-s", "X=env://VK_RUN_UNSET", "--", sys.executable, "-c",
              f"open({str(marker)!r}, 'w')"], dict(os.environ))
    assert r.returncode == 124  # run's backend failure: 120 + 4
    assert "X [env://VK_RUN_UNSET]: not_found" in r.stderr
    assert not marker.exists()


def test_run_forwards_signals(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = ("import signal, sys, time, pathlib\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
             f"pathlib.Path({str(ready)!r}).touch()\n"
             "time.sleep(30)\n")
    env = {**os.environ, "VK_SIG": "v"}
    proc = subprocess.Popen([VAULTKIT, "run", "-s", "A=env://VK_SIG", "--", sys.executable, "-c",
                             child], env=env)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
