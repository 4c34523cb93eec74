"""Dynamic PostgreSQL credentials from OpenBao's database engine, renewed and re-fetched."""

from __future__ import annotations

import pytest

from harness.canary import LeakCanary
from harness.servers import OpenBao, Postgres
from harness.vault_database import connect, enable_database
from harness.waiting import wait_for
from vaultkit.secret import Secret
from vaultkit.secrets import load_secrets

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database(openbao: OpenBao, postgres: Postgres) -> OpenBao:
    enable_database(openbao, postgres, "db-sec", {"short": ("6s", "60s"),
                                                  "capped": ("3s", "5s")})
    return openbao


def test_username_and_password_come_from_one_lease(database: OpenBao, postgres: Postgres,
                                                   leak_canary: LeakCanary) -> None:
    loaded = load_secrets({"DB_USER": "vault+dyn://db-sec/creds/short#username",
                           "DB_PASSWORD": "vault+dyn://db-sec/creds/short#password"},
                          config=database.config())
    leak_canary.add(loaded.reveal("DB_PASSWORD"))
    assert len(loaded.plan.calls) == 1 and len(loaded.leases) == 1
    lease = loaded.leases[0]
    assert lease.renewable and 0 < lease.duration <= 6
    assert connect(postgres, loaded.reveal("DB_USER"), loaded.reveal("DB_PASSWORD")) == 1
    leak_canary.watch(loaded, lease)


def test_watcher_renews_then_refetches_and_revokes(database: OpenBao, postgres: Postgres,
                                                   leak_canary: LeakCanary) -> None:
    spec = {"U": "vault+dyn://db-sec/creds/short#username",
            "P": "vault+dyn://db-sec/creds/short#password",
            "CU": "vault+dyn://db-sec/creds/capped#username",
            "CP": "vault+dyn://db-sec/creds/capped#password"}
    loaded = load_secrets(spec, config=database.config())
    leak_canary.add(loaded.reveal("P"))
    leak_canary.add(loaded.reveal("CP"))
    changes: list[dict[str, Secret[str]]] = []
    watcher = loaded.watch(static_ttl=None, on_change=changes.append, revoke_on_close=True)
    try:
        # 6 s lease: renewed at about 1.5-2 s, without a new credential.
        wait_for(lambda: watcher.stats["renew"] >= 1, timeout=5)
        assert watcher.get("U") == loaded["U"]
        # 3 s lease capped at 5 s max TTL: renewal comes back shorter -> fetched again.
        wait_for(lambda: any("CU" in c for c in changes), timeout=8)
        new_user, new_pw = watcher.get("CU").reveal(), watcher.get("CP").reveal()
        leak_canary.add(new_pw)
        assert new_user != loaded.reveal("CU")
        assert connect(postgres, new_user, new_pw) == 1
        status = watcher.status()
        assert {s["name"] for s in status} == set(spec)
        leak_canary.watch(status)
    finally:
        watcher.close()
    # revoke_on_close dropped every credential it was issued, old and new
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        connect(postgres, new_user, new_pw)
    with pytest.raises(psycopg.OperationalError):
        connect(postgres, loaded.reveal("U"), loaded.reveal("P"))
