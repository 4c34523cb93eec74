from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vaultkit import audit
from vaultkit.errors import InsecureFileError, NotFoundError, StorageError
from vaultkit.files import (
    atomic_write,
    check_private_file,
    file_lock,
    read_private,
    write_private,
)
from vaultkit.secret import Secret


def test_write_private_is_0600_from_the_start(tmp_path: Path) -> None:
    p = write_private(tmp_path / "k.key", b"x")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert read_private(p) == b"x"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def boom(*a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StorageError, match="No space left"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_permissive_key_files_are_refused(tmp_path: Path, mode: int) -> None:
    p = write_private(tmp_path / "k", b"x")
    os.chmod(p, mode)
    with pytest.raises(InsecureFileError, match=f"{mode:04o}"):
        check_private_file(p)


def test_missing_and_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        check_private_file(tmp_path / "absent")
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(InsecureFileError, match="regular"):
        check_private_file(d)


def _locked_increment(path: str, lock: str, n: int) -> None:
    for _ in range(n):
        with file_lock(lock):
            value = int(Path(path).read_text())
            atomic_write(path, str(value + 1).encode())


def test_file_lock_serialises_processes(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_locked_increment, args=(str(counter), str(tmp_path / "l"), 50))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert counter.read_text() == "200"


def test_audit_writes_json_lines_0600(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.configure(log)
    try:
        audit.record("keys.check", target="local://default", provider="local")
        audit.record("ca.issue", target="web", outcome="error", serial="ab")
    finally:
        audit.configure(None)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [e["action"] for e in lines] == ["keys.check", "ca.issue"]
    assert lines[1]["outcome"] == "error"
    assert {"time", "actor", "pid", "target"} <= set(lines[0])
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_audit_refuses_secret_values(leak_canary) -> None:
    value = leak_canary.new()
    with pytest.raises(TypeError) as info:
        audit.record("x", target="y", password=Secret(value))
    leak_canary.watch_exception(info.value)
    with pytest.raises(TypeError):
        audit.record("x", nested={"k": [Secret(value)]})
    with pytest.raises(TypeError):
        audit.record("x", key=b"raw bytes")


def test_audit_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTKIT_AUDIT_LOG", str(tmp_path / "a.jsonl"))
    audit.record("doctor")
    assert json.loads((tmp_path / "a.jsonl").read_text())["action"] == "doctor"


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write(target, b"one")
    write_private(target, b"two", sync_dir=False)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_audit_file_without_importing_logging(tmp_path: Path) -> None:
    """A CLI that never imported logging has no handler for it: the file still gets the event."""
    log = tmp_path / "a.jsonl"
    code = ("import json, sys\nfrom vaultkit import audit\n"
            f"audit.configure({str(log)!r})\naudit.record('ca.issue', target='web')\n"
            "print(json.dumps('logging' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) is False
    assert json.loads(log.read_text())["target"] == "web"


def test_audit_logger_gets_events_when_enabled(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger=audit.LOGGER_NAME):
        audit.record("doctor", target="t")
    assert [json.loads(r.getMessage())["action"] for r in caplog.records] == ["doctor"]
