"""Entry-name sanitising and generated passwords."""

from __future__ import annotations

import io
import math
import re

import pytest

from vaultkit.archive import write_archive
from vaultkit.archive.names import check_download_name, check_entry_name
from vaultkit.archive.passwords import (
    ALPHABET,
    coerce_password,
    generate_password,
    password_bits,
)
from vaultkit.errors import ArchiveError, UnsafeEntryNameError
from vaultkit.secret import Secret

HOSTILE = [
    "",
    "/etc/passwd",
    "\\\\server\\share\\x",
    "..",
    "../x",
    "a/../../x",
    "a/./b",
    "a//b",
    "dir/",
    "C:/Windows/x",
    "c:x",
    "a\\..\\b",
    "file.txt:stream",
    "ok\x00.txt",
    "line\nbreak",
    "esc\x1b[31m",
    "del\x7f",
    "c1\x85",
    "report\u202etxt.exe",
    "trailing. ",
    "dots...",
    "NUL",
    "con.txt",
    "dir/LPT1.log",
    "x" * 256,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeEntryNameError) as err:
        check_entry_name(name)
    # The message is one printable line even when the name has control characters.
    assert str(err.value).isprintable()
    assert "unsafe entry name" in str(err.value) or "empty" in str(err.value)


@pytest.mark.parametrize("name", ["a.txt", "chat/2024/05.jsonl", "über/naïve.txt", ".hidden",
                                  "name with spaces.txt", "console.log"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_entry_name(name) == name


@pytest.mark.parametrize("name", HOSTILE[:8])
def test_hostile_name_fails_before_any_byte_is_written(name: str) -> None:
    out = io.BytesIO()
    with pytest.raises(UnsafeEntryNameError):
        write_archive([("fine.txt", [b"x"]), (name, [b"y"])], out)
    assert out.getvalue() == b""


def test_duplicate_names_are_refused_case_insensitively() -> None:
    with pytest.raises(UnsafeEntryNameError, match="duplicate"):
        write_archive([("A.txt", [b"1"]), ("a.txt", [b"2"])], io.BytesIO())


def test_download_name_is_one_component() -> None:
    assert check_download_name("export.zip") == "export.zip"
    for bad in ("a/b.zip", 'q"uote.zip', "x\r\nSet-Cookie: a.zip"):
        with pytest.raises(UnsafeEntryNameError):
            check_download_name(bad)


def test_generated_password_shape_and_entropy() -> None:
    pw = generate_password()
    assert isinstance(pw, Secret)
    value = pw.reveal()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}", value)
    assert set(ALPHABET).isdisjoint("ILOU")
    assert len(set(ALPHABET)) == 32
    symbols = len(value.replace("-", ""))
    assert symbols * math.log2(len(ALPHABET)) >= 125
    assert password_bits(symbols) >= 125
    assert value not in repr(pw) and value not in str(pw)


def test_generated_passwords_are_unique_and_use_the_whole_alphabet() -> None:
    values = {generate_password().reveal() for _ in range(200)}
    assert len(values) == 200
    assert set("".join(values).replace("-", "")) == set(ALPHABET)


def test_too_few_symbols_refused() -> None:
    with pytest.raises(ArchiveError, match="125 bits"):
        generate_password(24)


def test_supplied_password_checks_never_echo_the_value() -> None:
    for bad in ("short", "ünïcödé-password-long"):
        with pytest.raises(ArchiveError) as err:
            coerce_password(bad)
        assert bad not in str(err.value)
    pw, generated = coerce_password(Secret("a-long-enough-pass\n"))
    assert not generated and pw.reveal() == "a-long-enough-pass"
    pw2, generated2 = coerce_password(None)
    assert generated2 and len(pw2.reveal()) == 29
