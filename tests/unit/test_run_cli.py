"""``vaultkit run``: every documented exit code, spec discovery, exec vs supervise, isolation.

``secrets check``/``plan`` codes (the common table) are provoked here too, so every code
``docs/cli.md`` lists for ``run`` and ``secrets`` has a test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.canary import LeakCanary
from vaultkit.keys.memory import MemoryKeyProvider
from vaultkit.secrets.envfile import encrypt_document, write_document

VAULTKIT = str(Path(sys.executable).parent / "vaultkit")
PY = sys.executable


def vk(args: list[str], cwd: Path, env: dict[str, str] | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VAULTKIT, *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def inproc(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI in this process, for failures that never start a child (no exec, no fork)."""
    from click.testing import CliRunner

    from vaultkit.cli import cli

    def no_exec(*args: object) -> None:
        raise AssertionError("run would have replaced the test process")

    monkeypatch.setattr(os, "execve", no_exec)

    def call(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Any:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(cli, args, env=env)
        result.returncode = result.exit_code
        return result
    return call


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a vaultkit.toml at its top and a nested working directory."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "vaultkit.toml").write_text('[secrets]\nGREETING = "env://VK_T_GREET"\n')
    work = tmp_path / "repo" / "services" / "api"
    work.mkdir(parents=True)
    return work


def test_child_codes_pass_through(repo: Path) -> None:
    env = {"VK_T_GREET": "hi"}
    for code in (0, 3, 119):
        assert vk(["run", "--", PY, "-c", f"raise SystemExit({code})"], repo, env
                  ).returncode == code
    killed = vk(["run", "--", PY, "-c", "import os, signal; os.kill(os.getpid(), 9)"], repo, env)
    assert killed.returncode == -9  # exec'd: vaultkit's own process died of it (a shell: 137)
    # supervised: the parent reports the signal the shell's way
    killed = vk(["run", "--supervise", "--no-restart", "--", PY, "-c",
                 "import os; os.kill(os.getpid(), 15)"], repo, env)
    assert killed.returncode == 128 + 15


def test_spec_found_upward_and_plan_says_which(repo: Path) -> None:
    spec = repo.parents[1] / "vaultkit.toml"
    r = vk(["run", "--", PY, "-c", "import os; print(os.environ['GREETING'])"], repo,
           {"VK_T_GREET": "hello"})
    assert r.returncode == 0 and r.stdout.strip() == "hello", r.stderr
    r = vk(["secrets", "plan"], repo, {"VK_T_GREET": "x"})
    assert r.returncode == 0 and f"spec: {spec}" in r.stdout
    r = vk(["secrets", "check", "--json"], repo, {"VK_T_GREET": "x"})
    assert json.loads(r.stdout)["spec"] == str(spec)
    # --config overrides discovery
    other = repo / "other.toml"
    other.write_text('[secrets]\nOTHER = "env://VK_T_GREET"\n')
    r = vk(["--config", str(other), "secrets", "plan", "--json"], repo)
    assert json.loads(r.stdout)["spec"] == str(other)


def test_no_spec_starts_nothing_121(tmp_path: Path, inproc: Any) -> None:
    # a vaultkit.toml above the repository's top (.git) is not ours
    (tmp_path / "vaultkit.toml").write_text('[secrets]\nX = "env://HOME"\n')
    work = tmp_path / "repo"
    (work / ".git").mkdir(parents=True)
    marker = tmp_path / "started"
    r = inproc(["run", "--", PY, "-c", f"open({str(marker)!r}, 'w')"], work)
    assert r.returncode == 121 and "no secrets spec" in r.stderr
    assert not marker.exists()
    # a config without [secrets] is no spec either
    (work / "vaultkit.toml").write_text('[aws]\nregion = "eu-west-1"\n')
    assert inproc(["run", "--", "true"], work).returncode == 121
    # plan/check use the common table: a configuration error
    assert inproc(["secrets", "plan"], work).returncode == 3
    assert inproc(["secrets", "check"], work).returncode == 3


def test_run_own_failures_are_offset_by_120(tmp_path: Path, repo: Path, inproc: Any) -> None:
    env = {"VK_T_GREET": "hi"}
    marker = tmp_path / "started"
    child = ["--", PY, "-c", f"open({str(marker)!r}, 'w')"]
    assert inproc(["run", "--no-such-option", *child], repo, env).returncode == 122
    assert inproc(["run", "--max-restarts", "-1", *child], repo, env).returncode == 122
    assert inproc(["run"], repo, env).returncode == 122  # no command
    assert inproc(["run", "--on-change", "reload", *child], repo, env).returncode == 123
    assert inproc(["run", "-s", "X=nope://y", *child], repo, env).returncode == 123
    broken = tmp_path / "broken.toml"
    broken.write_text("[secrets\n")
    assert inproc(["--config", str(broken), "run", *child], repo, env).returncode == 123
    r = inproc(["run", "-s", "X=env://VK_T_UNSET", *child], repo, env)
    assert r.returncode == 124 and "not_found" in r.stderr
    # a tampered encrypted file: cryptographic failure
    enc = tmp_path / "app.json"
    doc = encrypt_document({"pw": "v"}, MemoryKeyProvider.named("run-test"))
    doc["pw"] = doc["pw"][:-6] + "AAAAA]"
    write_document(enc, doc)
    r = inproc(["run", "-s", f"X=file://{enc}#pw", *child], repo, env)
    assert r.returncode == 125, r.stderr
    assert not marker.exists()
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert inproc(["run", "--", str(script)], repo, env).returncode == 126
    r = inproc(["run", "--", "vaultkit-no-such-command"], repo, env)
    assert r.returncode == 127 and "command not found" in r.stderr


@pytest.mark.parametrize("option", ["--refresh", "--grace", "--restart-backoff",
                                    "--max-staleness"])
def test_a_negative_duration_is_a_usage_error(tmp_path: Path, repo: Path, inproc: Any,
                                              option: str) -> None:
    # --max-staleness -1 used to stop the child at once, --grace -1 to SIGKILL it without
    # a grace period: a negative number of seconds is a usage error (122), nothing starts.
    marker = tmp_path / "started"
    r = inproc(["run", option, "-1", "--", PY, "-c", f"open({str(marker)!r}, 'w')"], repo,
               {"VK_T_GREET": "hi"})
    assert r.returncode == 122, r.stderr
    assert not marker.exists()


def test_restart_limit_exits_with_the_childs_last_code(tmp_path: Path, repo: Path) -> None:
    log = tmp_path / "starts"
    r = vk(["run", "--supervise", "--restart-backoff", "0.05", "--max-restarts", "2", "--",
            PY, "-c", f"open({str(log)!r}, 'a').write('x'); raise SystemExit(9)"], repo,
           {"VK_T_GREET": "hi"})
    assert r.returncode == 9
    assert log.read_text() == "xxx"
    assert "giving up" in r.stderr


def test_secrets_check_and_plan_codes(tmp_path: Path, repo: Path, inproc: Any) -> None:
    env = {"VK_T_GREET": "hi"}
    assert inproc(["secrets", "check"], repo, env).returncode == 0
    assert inproc(["secrets", "check", "-s", "X=env://VK_T_UNSET"], repo, env).returncode == 1
    assert inproc(["secrets", "plan", "-s", "X=nope://y"], repo, env).returncode == 1
    assert inproc(["secrets", "check", "--no-such-option"], repo, env).returncode == 2
    assert inproc(["secrets", "get", "GREETING", "--reveal"], repo, env).returncode == 0
    assert inproc(["secrets", "get", "NOPE", "--reveal"], repo, env).returncode == 3
    assert inproc(["secrets", "get", "X", "-s", "X=env://VK_T_UNSET", "--reveal"], repo,
              env).returncode == 4
    enc = tmp_path / "app.json"
    doc = encrypt_document({"pw": "v"}, MemoryKeyProvider.named("run-test2"))
    doc["pw"] = doc["pw"][:-6] + "AAAAA]"
    write_document(enc, doc)
    assert inproc(["secrets", "decrypt", str(enc), "--reveal"], repo, env).returncode == 5


def test_exec_when_nothing_to_supervise(repo: Path) -> None:
    probe = "import os; print(os.getppid())"
    r = vk(["run", "--", PY, "-c", probe], repo, {"VK_T_GREET": "hi"})
    # exec: the child *is* the vaultkit process, so its parent is our subprocess' parent
    assert int(r.stdout) == os.getpid()
    r = vk(["run", "--supervise", "--", PY, "-c", probe], repo, {"VK_T_GREET": "hi"})
    assert int(r.stdout) != os.getpid()
    assert "supervising" in r.stderr


def test_sigterm_to_a_supervising_run_stops_the_child(tmp_path: Path, repo: Path) -> None:
    ready = tmp_path / "ready"
    child = ("import pathlib, signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
             f"pathlib.Path({str(ready)!r}).touch()\n"
             "time.sleep(30)\n")
    proc = subprocess.Popen([VAULTKIT, "run", "--supervise", "--", PY, "-c", child], cwd=repo,
                            env={**os.environ, "VK_T_GREET": "hi"}, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_path(ready)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 42
        assert proc.stderr is not None and "SIGTERM received" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_path(path: Path, timeout: float = 20) -> None:
    import time

    end = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert path.exists()


# --- isolation -----------------------------------------------------------------------

READ_PARENT = (
    "import os, sys\n"
    "try:\n"
    "    data = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
    "except PermissionError:\n"
    "    print('denied')\n"
    "else:\n"
    "    print('token-visible' if sys.argv[1].encode() in data else 'read-no-token')\n"
    "print('own-env-' + ('ok' if os.environ.get('GREETING') else 'missing'))\n"
)


NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


def _as_nobody(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop to an unprivileged user"
    return subprocess.run([setpriv, *NOBODY, "--", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _interpreter_for_nobody(env: dict[str, str], cwd: Path) -> str:
    """A Python that uid 65534 may execute and that imports vaultkit (a venv under /root,
    as on the development machine, is out of its reach; the system python of the same
    version reads the venv's site-packages through PYTHONPATH)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/{version}",
                      f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and _as_nobody(
                [candidate, "-c", "import subprocess, sys, vaultkit.cli; "
                 "sys.exit(subprocess.run([sys.executable, '-c', '']).returncode)"],
                env, cwd).returncode == 0:
            return candidate
    raise AssertionError("no Python interpreter runnable by uid 65534 imports vaultkit")


def test_an_unprivileged_child_cannot_read_the_supervisors_environment(
        leak_canary: LeakCanary) -> None:
    import site
    import tempfile

    import vaultkit

    token = leak_canary.new("hvs")
    work = Path(tempfile.mkdtemp(prefix="vk-nobody-"))  # pytest's tmp_path is 0700 root
    try:
        work.chmod(0o755)
        (work / "vaultkit.toml").write_text('[secrets]\nGREETING = "env://VK_T_GREET"\n')
        pythonpath = os.pathsep.join([str(Path(vaultkit.__file__).parents[1]),
                                      *site.getsitepackages()])
        env = {"PATH": os.environ["PATH"], "VAULT_TOKEN": token, "VK_T_GREET": "hi",
               "HOME": str(work), "VAULTKIT_HOME": str(work), "PYTHONPATH": pythonpath}
        py = _interpreter_for_nobody(env, work)
        # The check can fail: a plain parent (no prctl) of the same user *is* readable.
        control = _as_nobody([py, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])",
                              py, "-c", READ_PARENT, token], {**env, "GREETING": "x"}, work)
        assert control.stdout.split() == ["token-visible", "own-env-ok"], control.stderr
        run = _as_nobody([py, "-c", "from vaultkit.cli import main; main()", "run",
                          "--supervise", "--", py, "-c", READ_PARENT, token], env, work)
        assert run.stdout.split() == ["denied", "own-env-ok"], run.stderr
        leak_canary.watch_text(run.stdout + run.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
