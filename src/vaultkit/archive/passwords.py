"""Archive passwords: machine-generated, 125 bits, easy to read aloud and type.

Why 125 bits (see ``docs/archive.md``): WinZip AES derives its key with PBKDF2-HMAC-SHA1
and only 1,000 iterations, and the first two bytes of the derived key are stored in the
clear as a password verifier, so an offline guess costs one short PBKDF2 run. We measured
4,357 guesses per second per CPU core; assume an attacker with 10^12 guesses per second
(far beyond any GPU cluster on this KDF). 2^125 / 2 guesses at that rate take about
6.7 * 10^17 years. A human-chosen password has nowhere near this, so vaultkit generates
the password and only lets a caller supply one through the API, stdin or a prompt.

The alphabet is Crockford's base32 (digits and upper-case letters without I, L, O, U):
32 symbols, 5 bits each, no 0/O or 1/I/L confusion, no symbols that keyboards move
around. 25 symbols in five dash-separated groups of five give exactly 125 bits; the
dashes are part of the password (7-Zip needs the exact string).

>>> pw = generate_password()
>>> len(pw.reveal()), pw.reveal().count("-")
(29, 4)
>>> password_bits(25)
125
"""

from __future__ import annotations

import math
import secrets

from ..errors import ArchiveError
from ..secret import Secret

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
assert len(ALPHABET) == 32  # noqa: S101 - a module invariant, checked at import
MIN_BITS = 125
DEFAULT_SYMBOLS = 25
GROUP = 5
#: A caller-supplied password must be at least this long (it cannot be measured; this
#: only rules out the obviously short).
MIN_SUPPLIED_LENGTH = 12


def password_bits(symbols: int) -> int:
    """Entropy in bits of a generated password with ``symbols`` symbols."""
    return int(symbols * math.log2(len(ALPHABET)))


def generate_password(symbols: int = DEFAULT_SYMBOLS) -> Secret[str]:
    """A fresh password from :mod:`secrets`: ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``.

    Refuses ``symbols`` that would carry fewer than 125 bits.
    """
    if password_bits(symbols) < MIN_BITS:
        raise ArchiveError(f"a generated password needs at least {MIN_BITS} bits "
                           f"({math.ceil(MIN_BITS / 5)} symbols)")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(symbols))
    groups = [raw[i:i + GROUP] for i in range(0, symbols, GROUP)]
    return Secret("-".join(groups), label="archive-password")


def coerce_password(password: Secret[str] | str | None) -> tuple[Secret[str], bool]:
    """Return ``(password, generated)``; check a caller-supplied one.

    A supplied password must be printable ASCII (7-Zip, WinZip and libarchive encode
    non-ASCII passwords differently, so such an archive may not open elsewhere) and at
    least 12 characters. Messages never include the value.
    """
    if password is None:
        return generate_password(), True
    value = password.reveal() if isinstance(password, Secret) else password
    if not isinstance(value, str):
        raise ArchiveError("the archive password must be a str")
    value = value.rstrip("\r\n")  # a line read from stdin
    if len(value) < MIN_SUPPLIED_LENGTH:
        raise ArchiveError(f"the archive password must be at least {MIN_SUPPLIED_LENGTH} "
                           "characters")
    if not all(" " <= ch <= "~" for ch in value):
        raise ArchiveError("the archive password must be printable ASCII")
    return Secret(value, label="archive-password"), False


__all__ = ["ALPHABET", "MIN_BITS", "coerce_password", "generate_password", "password_bits"]
