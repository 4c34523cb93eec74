"""The chat bot's export job: messages -> JSONL -> private AES-256 zip -> 7-day link.

    python examples/chatlog_export.py                                   # LocalStore in a temp dir
    python examples/chatlog_export.py --store s3://my-exports/bot       # S3 (bucket set up first:
                                                                        #   vaultkit archive setup)

It prints the two messages a bot sends, in this order: the link, then the password.
The password is never logged or stored; the bot sends it once and forgets it.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from vaultkit.archive import bot_messages, export_chat_log


def fetch_messages(n: int = 500) -> Iterator[dict[str, object]]:
    """Stands in for the bot's paginated history API: a generator, never a whole list."""
    start = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    for i in range(n):
        yield {"id": 1_000 + i, "author": ["ana", "bo", "cy"][i % 3],
               "at": (start + timedelta(minutes=7 * i)).isoformat(),
               "text": f"message number {i}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="s3://bucket[/prefix] or file://DIR")
    args = parser.parse_args()
    store = args.store or f"file://{tempfile.mkdtemp(prefix='vaultkit-exports-')}"
    result = export_chat_log(fetch_messages(), store=store, retention="7d")
    link_message, password_message = bot_messages(result)
    print(link_message)
    print()
    print(password_message)


if __name__ == "__main__":
    main()
