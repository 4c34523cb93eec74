"""``vault://mount/path/*`` and ``/**`` against real OpenBao KV v2: LIST, then one batch of reads."""

from __future__ import annotations

import uuid

import pytest

from harness.canary import LeakCanary
from harness.servers import OpenBao
from vaultkit.backends.vault import VaultClient
from vaultkit.errors import SecretsLoadError
from vaultkit.secrets import load_secrets

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tree(openbao: OpenBao) -> str:
    root = VaultClient.from_config(openbao.config())
    base = f"wild-{uuid.uuid4().hex[:6]}"
    root.write(f"secret/data/{base}/app/db", {"data": {"user": "app", "password": "pw-1"}})
    root.write(f"secret/data/{base}/app/api-keys", {"data": {"stripe.live": "sk-1"}})
    root.write(f"secret/data/{base}/app/team/cache", {"data": {"url": "redis://x"}})
    root.write(f"secret/data/{base}/other/db", {"data": {"password": "pw-2"}})
    return base


def test_one_level_and_recursive(openbao: OpenBao, tree: str, leak_canary: LeakCanary) -> None:
    config = openbao.config()
    loaded = load_secrets({"app": f"vault://secret/{tree}/app/*"}, config=config)
    assert loaded.as_env() == {"DB_USER": "app", "DB_PASSWORD": "pw-1",
                               "API_KEYS_STRIPE_LIVE": "sk-1"}
    assert loaded.plan.listing == [f"vault: LIST secret/metadata/{tree}/app"]
    assert len(loaded.plan.calls) == 1  # the two reads in one parallel batch
    deep = load_secrets({"APP_": f"vault://secret/{tree}/app/**"}, config=config)
    assert deep.reveal("APP_TEAM_CACHE_URL") == "redis://x"
    assert len(deep) == 4
    assert sorted(deep.plan.expanded["APP_"]) == sorted(deep)
    leak_canary.watch(loaded, deep)


def test_collision_and_missing_path(openbao: OpenBao, tree: str) -> None:
    config = openbao.config()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"a": f"vault://secret/{tree}/app/*",
                      "b": f"vault://secret/{tree}/other/*"}, config=config)
    err = str(info.value.failures["DB_PASSWORD"])
    assert f"vault://secret/{tree}/app/db#password" in err
    assert f"vault://secret/{tree}/other/db#password" in err
    assert set(info.value.failures) == {"DB_PASSWORD"}
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"x": f"vault://secret/{tree}/nothing/*"}, config=config)
    assert info.value.failures["x"].category == "not_found"
    optional = load_secrets({"x": f"vault://secret/{tree}/nothing/*?optional=1"},
                            config=config)
    assert len(optional) == 0


def test_watcher_refreshes_names_a_wildcard_produced(openbao: OpenBao, tree: str) -> None:
    config = openbao.config()
    root = VaultClient.from_config(config)
    loaded = load_secrets({"o": f"vault://secret/{tree}/other/*"}, config=config)
    with loaded.watch(static_ttl=None, renew_token=False) as watcher:
        root.write(f"secret/data/{tree}/other/db", {"data": {"password": "pw-3"}})
        changed = watcher.refresh_now()
    assert changed["DB_PASSWORD"].reveal() == "pw-3"
