"""``vaultkit secrets edit``: where the plaintext lives, that it is gone after every exit path,
TOML round trips (tomllib + tomli-w), and the limits on ``file://`` documents."""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.canary import LeakCanary
from vaultkit.errors import SecretsLoadError
from vaultkit.keys.memory import MemoryKeyProvider
from vaultkit.secrets import editing, load_secrets
from vaultkit.secrets.envfile import (
    MAX_FILE_BYTES,
    decrypt_document,
    encrypt_document,
    parse,
    read_document,
    toml_dumps,
    write_document,
)

VAULTKIT = str(Path(sys.executable).parent / "vaultkit")
KEK = MemoryKeyProvider.named("edit-tests")

DOC = {
    "title": "svc",
    "limits": {"max": math.inf, "min": -math.inf},
    "started": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "local": dt.datetime(2026, 1, 2, 3, 4, 5),
    "day": dt.date(2026, 5, 6),
    "at": dt.time(7, 8, 9),
    "servers": [{"name": "a", "port": 1, "since": dt.date(2025, 1, 1)},
                {"name": "b", "port": 2}],
    "nested": {"deep": {"token": "t"}},
}


def test_toml_round_trips_inf_nan_dates_and_arrays_of_tables() -> None:
    text = toml_dumps({**DOC, "nan": math.nan})
    back = parse(text, "toml", reference="x")
    assert math.isnan(back.pop("nan"))
    assert back == DOC
    # written by hand with [[servers]]: read, written, read again, the same
    source = ('[[servers]]\nname = "a"\nup = 2026-01-02T03:04:05Z\n'
              '[[servers]]\nname = "b"\nratio = nan\n')
    doc = parse(source, "toml", reference="x")
    again = parse(toml_dumps(doc), "toml", reference="x")
    assert again["servers"][0] == doc["servers"][0] and math.isnan(again["servers"][1]["ratio"])


def test_encrypted_toml_file_keeps_every_type(tmp_path: Path) -> None:
    path = tmp_path / "s.enc.toml"
    write_document(path, encrypt_document(DOC, KEK))
    assert decrypt_document(read_document(path)) == DOC


def test_the_plaintext_goes_to_dev_shm_else_xdg_runtime_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULTKIT_EDIT_DIR", raising=False)
    first = editing.private_dir()
    try:
        if os.access("/dev/shm", os.W_OK):
            assert first.parent == Path("/dev/shm")
        assert first.stat().st_mode & 0o777 == 0o700
    finally:
        first.rmdir()
    runtime = tmp_path / "run-user"
    runtime.mkdir()
    monkeypatch.setattr(editing, "SHM", str(tmp_path / "no-shm-here"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    second = editing.private_dir()
    assert second.parent == runtime
    second.rmdir()


@pytest.fixture(scope="module")
def local_kek() -> object:
    """A ``local://`` KEK (a 0600 key file under $VAULTKIT_HOME) the CLI subprocess can open."""
    from vaultkit.keys import get_key_provider

    if subprocess.run([VAULTKIT, "keys", "init-local", "edit-tests", "--store", "file"],
                      capture_output=True, timeout=60).returncode not in (0, 3):
        raise AssertionError("could not create local://edit-tests")
    return get_key_provider("local://edit-tests")


def _edit_session(tmp_path: Path, editor_body: str, extra: dict[str, str] | None = None
                  ) -> tuple[Path, Path, dict[str, str]]:
    from vaultkit.keys import get_key_provider

    path = tmp_path / "app.enc.toml"
    write_document(path, encrypt_document({**DOC, **(extra or {})},
                                          get_key_provider("local://edit-tests")))
    seen = tmp_path / "seen"
    editor = tmp_path / "editor.py"
    editor.write_text(f"import sys, time\nopen({str(seen)!r}, 'w').write(sys.argv[1])\n"
                      + editor_body)
    env = {**os.environ, "EDITOR": f"{sys.executable} {editor}"}
    return path, seen, env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_plaintext_is_removed_on_each_signal(tmp_path: Path, local_kek: object, sig: int) -> None:
    path, seen, env = _edit_session(tmp_path, "time.sleep(30)\n")
    before = path.read_bytes()
    proc = subprocess.Popen([VAULTKIT, "secrets", "edit", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # the signal reaches vaultkit alone
    end = time.monotonic() + 20
    while not (seen.exists() and seen.read_text()) and time.monotonic() < end:
        time.sleep(0.05)
    plaintext = Path(seen.read_text())
    assert plaintext.exists()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + sig
    assert "the plaintext was removed" in err
    assert not plaintext.exists() and not plaintext.parent.exists()
    assert path.read_bytes() == before


def test_editor_failure_removes_the_plaintext(tmp_path: Path, local_kek: object,
                                              leak_canary: LeakCanary) -> None:
    path, seen, env = _edit_session(tmp_path, "sys.exit(4)\n", {"token": leak_canary.new()})
    r = subprocess.run([VAULTKIT, "secrets", "edit", str(path)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3 and "unchanged" in r.stderr
    assert not Path(seen.read_text()).parent.exists()
    leak_canary.watch_text(r.stdout + r.stderr)
    leak_canary.watch_path(path)


def test_editing_a_toml_file_with_arrays_of_tables_and_dates(tmp_path: Path,
                                                             local_kek: object) -> None:
    path, _, env = _edit_session(
        tmp_path,
        "import tomllib, tomli_w\n"
        "doc = tomllib.loads(open(sys.argv[1]).read())\n"
        "doc['servers'].append({'name': 'c', 'port': 3})\n"
        "open(sys.argv[1], 'w').write(tomli_w.dumps(doc))\n")
    r = subprocess.run([VAULTKIT, "secrets", "edit", str(path)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "changed: servers" in r.stdout
    after = decrypt_document(read_document(path))
    assert after["servers"][-1] == {"name": "c", "port": 3}
    assert after["started"] == DOC["started"] and after["at"] == DOC["at"]
    # an editor that changes nothing leaves the file as it was
    (tmp_path / "again").mkdir()
    path2, _, env2 = _edit_session(tmp_path / "again", "pass\n")
    before = path2.read_bytes()
    r = subprocess.run([VAULTKIT, "secrets", "edit", str(path2)], env=env2,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "no changes" in r.stdout
    assert path2.read_bytes() == before


def test_file_references_accept_only_small_regular_files(tmp_path: Path,
                                                         leak_canary: LeakCanary) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * MAX_FILE_BYTES + '"}')
    t0 = time.monotonic()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"ZERO": "file:///dev/zero#k", "FIFO": f"file://{fifo}#k",
                      "DIR": f"file://{tmp_path}#k", "BIG": f"file://{big}#k"})
    assert time.monotonic() - t0 < 5  # nothing hangs, nothing grows
    failures = info.value.failures
    for name in ("ZERO", "FIFO", "DIR"):
        assert "not a regular file" in str(failures[name]), name
    assert "larger than" in str(failures["BIG"])
    leak_canary.watch_exception(info.value)


@pytest.mark.parametrize("ends", ["normally", "with a first signal"])
def test_a_second_signal_during_the_cleanup_cannot_leave_the_plaintext(
        monkeypatch: pytest.MonkeyPatch, ends: str) -> None:
    # Ctrl-C twice, or SIGHUP then SIGTERM when a terminal closes: the signal that lands
    # while the directory is being wiped must wait until the files are gone.
    real_rmtree = editing.shutil.rmtree

    def rmtree_after_a_signal(path: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, before the real removal
        real_rmtree(path, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(editing.shutil, "rmtree", rmtree_after_a_signal)
    handler_before = signal.getsignal(signal.SIGTERM)
    seen: list[Path] = []
    with pytest.raises(editing.EditInterrupted) as info:
        with editing.plaintext_file("edit.toml", b"pw = 'plaintext'\n") as path:
            seen.append(path)
            if ends != "normally":
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
    assert info.value.signum == (signal.SIGTERM if ends == "normally" else signal.SIGINT)
    assert not seen[0].exists() and not seen[0].parent.exists()
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the caller's handler is back


def test_an_edit_that_is_not_utf8_is_a_clear_error(tmp_path: Path, local_kek: object,
                                                   leak_canary: LeakCanary) -> None:
    # Latin-1 text saved by the editor: a clear error (exit 3), no traceback, nothing left.
    path, seen, env = _edit_session(
        tmp_path, "open(sys.argv[1], 'ab').write(b'note = \"caf\\xe9\"\\n')\n",
        {"token": leak_canary.new()})
    before = path.read_bytes()
    r = subprocess.run([VAULTKIT, "secrets", "edit", str(path)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert "not UTF-8" in r.stderr and "Traceback" not in r.stderr
    assert not Path(seen.read_text()).parent.exists()
    assert path.read_bytes() == before
    leak_canary.watch_text(r.stdout + r.stderr)
