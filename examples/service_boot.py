"""A small service that boots with ``load_secrets`` and connects to PostgreSQL with dynamic
credentials issued by OpenBao's database engine, then keeps them fresh with the watcher.

Run it against the test harness's servers (it starts OpenBao and PostgreSQL itself)::

    .venv/bin/python examples/service_boot.py

In production the spec would live in ``vaultkit.toml``::

    [secrets]
    DB_USER = "vault+dyn://database/creds/app#username"
    DB_PASSWORD = "vault+dyn://database/creds/app#password"

and a service that reads its credentials from the environment would start under
``vaultkit run -- ./server``, which renews the lease, restarts the server with a
new credential when the old one reaches its max TTL, and revokes it on exit
(the second half of this example does exactly that).
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
            time.sleep(1)
        conn.close()
        print("status:", [(s["name"], s["next"], s["lease_left"]) for s in watcher.status()])
    print("leases revoked on shutdown")


CHILD = """
import os, sys, psycopg
with psycopg.connect(host=sys.argv[1], dbname="postgres", user=os.environ["DB_USER"],
                     password=os.environ["DB_PASSWORD"]) as conn:
    print("child connected:", conn.execute("select 1").fetchone() == (1,))
    print("child sees VAULT_TOKEN:", "VAULT_TOKEN" in os.environ)
"""


def under_vaultkit_run(addr: str, token: str, socket_dir: str) -> None:
    """The same credentials for a child started by ``vaultkit run`` (supervised: a lease)."""
    import os
    import subprocess

    vaultkit = str(Path(sys.executable).parent / "vaultkit")
    spec = [arg for name, ref in SPEC.items() for arg in ("-s", f"{name}={ref}")]
    env = {**os.environ, "VAULT_ADDR": addr, "VAULT_TOKEN": token}
    result = subprocess.run([vaultkit, "run", *spec, "--", sys.executable, "-c", CHILD,
                             socket_dir], env=env, capture_output=True, text=True, timeout=60)
    print(result.stdout, end="")
    print("vaultkit run said:", result.stderr.strip().splitlines()[0])
    print("vaultkit run exit code:", result.returncode)


def main() -> None:
    import tempfile

    from harness.servers import start_openbao, start_postgres
    from vaultkit.backends.vault import VaultClient
    from vaultkit.errors import NotFoundError

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
        under_vaultkit_run(bao.addr, bao.token, socket_dir)
        try:
            left = len(root.list("sys/leases/lookup/database/creds/app/"))
        except NotFoundError:  # Vault answers 404 for an empty list
            left = 0
        print("leases left after both:", left)
    finally:
        bao.stop()
        pg.stop()


if __name__ == "__main__":
    main()
