"""OpenBao's database secrets engine over the harness's PostgreSQL (pgserver).

pgserver listens on a unix socket only; OpenBao's pgx driver accepts that directory as
``host=``, and so does psycopg.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from harness.servers import OpenBao, Postgres
from vaultkit.backends.vault import VaultClient

CREATE = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
          "VALID UNTIL '{{expiration}}';")


def socket_dir(pg: Postgres) -> str:
    return parse_qs(urlsplit(pg.uri).query)["host"][0]


def enable_database(openbao: OpenBao, postgres: Postgres, mount: str,
                    roles: Mapping[str, tuple[str, str]]) -> VaultClient:
    """Mount the engine at ``mount`` with ``roles`` (name -> (default_ttl, max_ttl)).

    Returns a root-token client for the test's own checks (leases, lookups).
    """
    root = VaultClient.from_config(openbao.config())
    openbao.bao("secrets", "enable", f"-path={mount}", "database", check=False)
    root.write(f"{mount}/config/pg", {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": f"host={socket_dir(postgres)} user=postgres dbname=postgres "
                          "sslmode=disable",
        "allowed_roles": list(roles),
    })
    for name, (ttl, max_ttl) in roles.items():
        root.write(f"{mount}/roles/{name}", {"db_name": "pg", "creation_statements": [CREATE],
                                             "default_ttl": ttl, "max_ttl": max_ttl})
    return root


def connect(pg: Postgres, user: str, password: str) -> int:
    """Log in as ``user`` and run ``select 1``: 1 when the credential works."""
    import psycopg

    with psycopg.connect(host=socket_dir(pg), dbname="postgres", user=user,
                         password=password) as conn:
        row = conn.execute("select 1").fetchone()
        return int(row[0]) if row else 0
