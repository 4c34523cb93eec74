"""Entry-name rules: a name inside a vaultkit archive can never point outside the folder it is
extracted into, on any operating system.

A zip stores names as free text, and extractors differ in what they do with an
absolute path, ``..``, a drive letter or a backslash ("zip slip", CVE-2018-1002200
and its many siblings). vaultkit therefore refuses such names when it *writes* an
archive and again when it *reads* one, instead of silently rewriting them: a
rewritten name would surprise the person who chose it.

>>> check_entry_name("chat/2024-05.jsonl")
'chat/2024-05.jsonl'
>>> check_entry_name("../etc/passwd")
Traceback (most recent call last):
...
vaultkit.errors.UnsafeEntryNameError: unsafe entry name: '..' path component (reference=../etc/passwd)
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import UnsafeEntryNameError

#: The zip format stores a name's length in 16 bits.
MAX_NAME_BYTES = 0xFFFF
#: ext4, APFS and NTFS all cap one path component at 255 bytes/units.
MAX_COMPONENT_BYTES = 255

# Windows maps these to devices whatever the extension ("NUL.txt" is the NUL device).
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_DRIVE = re.compile(r"^[A-Za-z]:")


def _reject(name: str, why: str) -> UnsafeEntryNameError:
    # repr() escapes control characters, so the message itself stays one clean line.
    return UnsafeEntryNameError(f"unsafe entry name: {why}", reference=repr(name)[1:-1][:200])


def check_entry_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe relative POSIX path, else raise.

    Refused: empty names, absolute paths (``/x``, ``\\\\server``), drive letters (``C:``),
    backslashes, ``:`` (NTFS alternate streams), ``.``/``..``/empty components, control and
    bidirectional-format characters (names that display differently from what they are),
    trailing dots or spaces (Windows strips them), Windows device names, and over-long
    names.
    """
    if not isinstance(name, str):
        raise UnsafeEntryNameError("entry name must be a string", reference=type(name).__name__)
    if not name:
        raise _reject(name, "empty name")
    for ch in name:
        cat = unicodedata.category(ch)
        # Cc: C0/C1 controls incl. NUL, CR, LF, ESC. Cf: bidi overrides (U+202E) and other
        # invisible format characters that make "exe.txt" display as "txt.exe".
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise _reject(name, f"control or invisible character U+{ord(ch):04X}")
    if name.startswith(("/", "\\")):
        raise _reject(name, "absolute path")
    if _DRIVE.match(name):
        raise _reject(name, "drive letter")
    if "\\" in name:
        raise _reject(name, "backslash (a path separator on Windows)")
    if ":" in name:
        raise _reject(name, "':' (a drive or NTFS stream separator on Windows)")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _reject(name, "name longer than 65535 bytes")
    for part in name.split("/"):
        if part in ("", "."):
            raise _reject(name, "empty or '.' path component")
        if part == "..":
            raise _reject(name, "'..' path component")
        if part != part.rstrip(" ."):
            raise _reject(name, "component ends with a dot or space")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise _reject(name, "path component longer than 255 bytes")
        if part.split(".", 1)[0].upper() in _WINDOWS_DEVICES:
            raise _reject(name, "Windows device name")
    return name


def check_download_name(filename: str) -> str:
    """A file name for ``Content-Disposition``: one safe component ending in ``.zip``."""
    check_entry_name(filename)
    if "/" in filename or '"' in filename:
        raise _reject(filename, "download name must be a single file name without quotes")
    return filename


__all__ = ["MAX_COMPONENT_BYTES", "MAX_NAME_BYTES", "check_download_name", "check_entry_name"]
