"""A small service that boots with ``load_secrets`` and connects to PostgreSQL with dynamic
credentials issued by OpenBao's database engine, then keeps them fresh with the watcher.

Run it against the test harness's servers (it starts OpenBao and PostgreSQL itself)::

    .venv/bin/python examples/service_boot.py

In production the spec would live in ``vaultkit.toml``::

    [secrets]
    DB_USER = "vault+dyn://database/creds/app#username"
    DB_PASSWORD = "vault+dyn://database/creds/app#password"
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SPEC = {
    "DB_USER": "vault+dyn://database/creds/app#username",
    "DB_PASSWORD": "vault+dyn://database/creds/app#password",
}
CREATE = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
          "VALID UNTIL '{{expiration}}';")


def boot(config: object, socket_dir: str) -> None:
    """What a real service does at start-up: load, redact, connect, watch."""
    import psycopg

    from vaultkit.secrets import install_redaction, load_secrets

    secrets = load_secrets(SPEC, config=config, deadline=10)  # type: ignore[arg-type]
    install_redaction(secrets)
    log = logging.getLogger("service")

    def connect() -> psycopg.Connection:
        return psycopg.connect(host=socket_dir, dbname="postgres",
                               user=watcher.get("DB_USER").reveal(),
                               password=watcher.get("DB_PASSWORD").reveal())

    with secrets.watch(static_ttl=None, revoke_on_close=True) as watcher:
        conn = connect()
        log.info("connected as %s", watcher.get("DB_USER").reveal())  # redacted in the log

        @watcher.on_change
        def reconnect(changed: dict[str, object]) -> None:
            log.info("credentials rotated (%s); reconnecting", ", ".join(sorted(changed)))

        for _ in range(3):
            print("select 1 ->", conn.execute("select 1").fetchone())
            time.sleep(2)
        conn.close()
        print("status:", [(s["name"], s["next"], s["lease_left"]) for s in watcher.status()])
    print("leases revoked on shutdown")


def main() -> None:
    import tempfile

    from harness.servers import start_openbao, start_postgres
    from vaultkit.backends.vault import VaultClient

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    bao = start_openbao()
    pg = start_postgres(Path(tempfile.mkdtemp(prefix="vk-example-pg-")))
    try:
        socket_dir = parse_qs(urlsplit(pg.uri).query)["host"][0]
        root = VaultClient.from_config(bao.config())
        bao.bao("secrets", "enable", "database")
        root.write("database/config/pg", {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": f"host={socket_dir} user=postgres dbname=postgres sslmode=disable",
            "allowed_roles": ["app"]})
        root.write("database/roles/app", {"db_name": "pg", "creation_statements": [CREATE],
                                          "default_ttl": "6s", "max_ttl": "60s"})
        boot(bao.config(), socket_dir)
    finally:
        bao.stop()
        pg.stop()


if __name__ == "__main__":
    main()
