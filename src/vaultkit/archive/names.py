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
# It also counts the superscript digits ¹ ² ³ (U+00B9, U+00B2, U+00B3) as digits here,
# so "COM¹.txt" opens a serial port (Microsoft, "Naming Files, Paths, and Namespaces").
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{d}" for dev in ("COM", "LPT") for d in "0123456789\u00b9\u00b2\u00b3"]
)

# Characters that render as nothing (or as blank space) but are not in the C* categories:
# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt: the Hangul fillers
# U+115F, U+1160, U+3164, U+FFA0, the combining grapheme joiner, Khmer inherent vowels,
# variation selectors, ...) plus U+2800 BRAILLE PATTERN BLANK. A name made of them looks
# empty or identical to another one in a file manager.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def _invisible(ch: str) -> bool:
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES):
        return True
    # Spaces other than U+0020 (no-break, ideographic, em...), line/paragraph separators.
    return ch != " " and unicodedata.category(ch) in ("Zs", "Zl", "Zp")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _reject(name: str, why: str) -> UnsafeEntryNameError:
    # repr() escapes control characters, so the message itself stays one clean line.
    return UnsafeEntryNameError(f"unsafe entry name: {why}", reference=repr(name)[1:-1][:200])


def check_entry_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe relative POSIX path, else raise.

    Refused: empty names, absolute paths (``/x``, ``\\\\server``), drive letters (``C:``),
    backslashes, ``:`` (NTFS alternate streams), ``.``/``..``/empty components, control and
    bidirectional-format characters (names that display differently from what they are),
    invisible and filler characters (U+3164, U+115F, U+2800, no-break spaces, ...),
    trailing dots or spaces (Windows strips them), Windows device names (``COM¹`` too),
    and over-long names. Duplicates after NFC normalisation are refused by the planner.
    """
    if not isinstance(name, str):
        raise UnsafeEntryNameError("entry name must be a string", reference=type(name).__name__)
    if not name:
        raise _reject(name, "empty name")
    for ch in name:
        cat = unicodedata.category(ch)
        # Cc: C0/C1 controls incl. NUL, CR, LF, ESC. Cf: bidi overrides (U+202E) and other
        # invisible format characters that make "exe.txt" display as "txt.exe".
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn") or _invisible(ch):
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
        if part.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
            raise _reject(name, "Windows device name")
    return name


def check_download_name(filename: str) -> str:
    """A file name for ``Content-Disposition``: one safe component ending in ``.zip``."""
    check_entry_name(filename)
    if "/" in filename or '"' in filename:
        raise _reject(filename, "download name must be a single file name without quotes")
    return filename


__all__ = ["MAX_COMPONENT_BYTES", "MAX_NAME_BYTES", "check_download_name", "check_entry_name"]
