"""An in-memory :class:`Transport` for unit tests of code that uses :class:`VaultClient`.

Like httpx's ``MockTransport``: a function receives each :class:`Request` and returns
a :class:`Response` (or raises a vaultkit error, e.g. ``UnavailableError`` for a
connection refused). No sockets, no threads of its own.

>>> import json
>>> from vaultkit.backends.vault import VaultClient
>>> from vaultkit.config import VaultSettings
>>> def handler(request: Request) -> Response:
...     return Response(200, {}, json.dumps({"data": {"data": {"pw": "x"}}}).encode())
>>> vc = VaultClient(VaultSettings(addr=("http://vault:8200",), token="t"),
...                  transport=MockTransport(handler))
>>> vc.read("kv/data/app")["data"]["data"]["pw"]
'x'
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .transport import Request, Response

Handler = Callable[[Request], Response]


class MockTransport:
    """Answer every request with ``handler(request)``; ``requests`` records what was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.closed = False

    def send(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        self.closed = True


def json_response(status: int = 200, body: Mapping[str, Any] | None = None,
                  headers: Mapping[str, str] | None = None) -> Response:
    """A :class:`Response` with a JSON body (``{}`` for ``None``)."""
    data = b"" if body is None and status == 204 else json.dumps(body or {}).encode()
    return Response(status, {"content-type": "application/json", **(headers or {})}, data)


__all__ = ["Handler", "MockTransport", "json_response"]

