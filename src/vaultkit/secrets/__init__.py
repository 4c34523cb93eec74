"""Secrets at boot: ``load_secrets`` and everything around it.

>>> from vaultkit.secrets import load_secrets
>>> secrets = load_secrets({"DB_PASSWORD": "vault://kv/app#db_password",
...                         "API_KEY": "awssm://prod/api#key"}, deadline=10)  # doctest: +SKIP
>>> os.environ.update(secrets.as_env())                                      # doctest: +SKIP

Modules: :mod:`.refs` (the URI syntax), :mod:`.planner` (dedupe and batch),
:mod:`.loader` (parallel fetch under one deadline), :mod:`.retry`,
:mod:`.watcher` (leases and refresh), :mod:`.redaction` (a logging filter),
:mod:`.envfile` (the encrypted local file), :mod:`.sources` (one per backend),
:mod:`.wildcards` (``/*`` and ``/**`` references), :mod:`.supervisor` and
:mod:`.child_env` (what ``vaultkit run`` does for its child), :mod:`.discovery`
(finding ``vaultkit.toml``), :mod:`.editing` (``secrets edit``'s plaintext file).
Nothing here imports boto3 or urllib3 until a source makes its first call.
"""

from __future__ import annotations

from .loader import LoadedSecrets, from_env, load_secrets, resolve
from .planner import Plan, make_plan
from .redaction import RedactingFilter, install_redaction
from .refs import SCHEMES, Reference, is_reference, parse_reference
from .retry import Deadline, RetryPolicy
from .sources import MemorySource, SecretSource, memory_source
from .sources.base import Call, CallResult, Fetched, Lease
from .watcher import SecretWatcher

__all__ = [
    "SCHEMES",
    "Call",
    "CallResult",
    "Deadline",
    "Fetched",
    "Lease",
    "LoadedSecrets",
    "MemorySource",
    "Plan",
    "RedactingFilter",
    "Reference",
    "RetryPolicy",
    "SecretSource",
    "SecretWatcher",
    "from_env",
    "install_redaction",
    "is_reference",
    "load_secrets",
    "make_plan",
    "memory_source",
    "parse_reference",
    "resolve",
]
