"""What a child started by ``vaultkit run`` may see: its secrets, not vaultkit's credentials.

Two protections, each with a stated limit:

* :func:`child_environment` drops every credential vaultkit authenticated
  with before the child is started: Vault/OpenBao tokens and AppRole secret
  ids (``VAULT_TOKEN``, ``BAO_TOKEN``, ``VAULT_APPROLE_SECRET_ID``, any
  ``VAULT_*``/``BAO_*``/``VAULTKIT_VAULT_*`` variable ending in ``TOKEN`` or
  ``SECRET_ID``, and the configured secret-id variable), the AWS keys
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
  ``AWS_SECURITY_TOKEN``, ``AWS_CONTAINER_AUTHORIZATION_TOKEN``) and
  ``VAULTKIT_*_PASSPHRASE``. A secret the spec
  itself names (``AWS_SECRET_ACCESS_KEY = "vault://..."``) is added *after*
  the stripping, so the child still gets what it asked for.
* :func:`make_non_dumpable` calls ``prctl(PR_SET_DUMPABLE, 0)`` in a
  supervising parent. ``/proc/<pid>/environ`` is the environment the parent was
  *started* with (deleting from ``os.environ`` does not scrub it), and any
  process of the same user may read it, or ``ptrace`` the parent, unless the
  parent is not dumpable (ptrace(2), "Ptrace access mode checking"). It does
  **not** protect against root or ``CAP_SYS_PTRACE``, against another user's
  process (they were refused already), or the child's *own* environment:
  ``execve`` resets the flag to 1 for the child, so the secrets the child
  received stay readable by its own user through ``/proc/<child>/environ``.
  It also turns off core dumps of the parent.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Iterable, Mapping

#: Variables always removed (unless ``keep_credentials``).
CREDENTIAL_VARS = (
    "VAULT_TOKEN", "BAO_TOKEN", "VAULT_APPROLE_SECRET_ID", "BAO_APPROLE_SECRET_ID",
    "VAULTKIT_VAULT_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    # the ECS/EKS Pod Identity credential endpoint's bearer token (not the *_FILE path)
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
#: ...and every variable whose name matches one of these.
CREDENTIAL_PATTERNS = (
    re.compile(r"^(VAULT|BAO|VAULTKIT_VAULT)_(\w+_)?(TOKEN|SECRET_ID)$"),
    re.compile(r"^VAULTKIT_\w*PASSPHRASE$"),
)

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
PR_GET_DUMPABLE = 3


def is_credential(name: str, extra: Iterable[str] = ()) -> bool:
    return name in CREDENTIAL_VARS or name in set(extra) or any(
        p.match(name) for p in CREDENTIAL_PATTERNS)


def child_environment(secrets: Mapping[str, str], *, pristine: bool = False,
                      keep_credentials: bool = False, secret_id_env: str | None = None,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ``base`` (default ``os.environ``) minus credentials, plus secrets.

    ``pristine`` starts from nothing but ``PATH`` (so the command can be found).

    >>> env = child_environment({"DB_PW": "x"}, base={"PATH": "/bin", "VAULT_TOKEN": "t",
    ...                                               "AWS_SESSION_TOKEN": "s", "LANG": "C"})
    >>> sorted(env)
    ['DB_PW', 'LANG', 'PATH']
    """
    parent = dict(os.environ if base is None else base)
    env = parent if not pristine else {k: v for k, v in parent.items() if k == "PATH"}
    if not keep_credentials:
        extra = [secret_id_env] if secret_id_env else []
        for name in [n for n in env if is_credential(n, extra)]:
            del env[name]
    env.update(secrets)
    return env


def make_non_dumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)`` on Linux; False where it is not available.

    After this, a process of the same user (the child included) can neither read
    this process's ``/proc/<pid>/environ``/``mem`` nor attach to it with ptrace.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False
    prctl.restype = ctypes.c_int
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        return False
    return bool(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)


__all__ = ["CREDENTIAL_PATTERNS", "CREDENTIAL_VARS", "child_environment", "is_credential",
           "make_non_dumpable"]
