"""load_secrets against a real OpenBao: KV v1/v2, versions, JSON keys, and the fault cases."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from contracts.secret_source import Put, SecretSourceContract
from harness.canary import LeakCanary
from harness.servers import OpenBao, free_port, start_openbao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config, VaultSettings
from vaultkit.errors import SecretsLoadError, VaultkitError
from vaultkit.secrets import RetryPolicy, SecretSource, load_secrets
from vaultkit.secrets.sources.vault_kv import VaultKVSource

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kv(openbao: OpenBao) -> OpenBao:
    openbao.bao("secrets", "enable", "-path=kv2-sec", "-version=2", "kv", check=False)
    openbao.bao("secrets", "enable", "-path=kv1-sec", "-version=1", "kv", check=False)
    return openbao


def _root(openbao: OpenBao) -> VaultClient:
    return VaultClient.from_config(openbao.config())


def _kv_put(client: VaultClient, mount: str, version: int, path: str, data: dict[str, object]
            ) -> None:
    if version == 2:
        client.write(f"{mount}/data/{path}", {"data": data})
    else:
        client.write(f"{mount}/{path}", data)


class _KVContract(SecretSourceContract):
    mount = ""
    version = 2

    @pytest.fixture
    def source(self, kv: OpenBao) -> SecretSource:
        return VaultKVSource(config=kv.config(), client=_root(kv))

    @pytest.fixture
    def put(self, kv: OpenBao) -> Put:
        client = _root(kv)
        prefix = f"contract-{uuid.uuid4().hex[:8]}"

        def put(name: str, value: str) -> str:
            try:
                data = json.loads(value)
            except ValueError:
                data = None
            if isinstance(data, dict):
                _kv_put(client, self.mount, self.version, f"{prefix}/{name}", data)
                return f"vault://{self.mount}/{prefix}/{name}"
            _kv_put(client, self.mount, self.version, f"{prefix}/{name}", {"value": value})
            return f"vault://{self.mount}/{prefix}/{name}#value"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return f"vault://{self.mount}/contract/does-not-exist#value"


class TestKVv2(_KVContract):
    mount, version = "kv2-sec", 2


class TestKVv1(_KVContract):
    mount, version = "kv1-sec", 1


def test_kv_versions_are_detected_and_pinned(kv: OpenBao, leak_canary: LeakCanary) -> None:
    client = _root(kv)
    old, new = leak_canary.new(), leak_canary.new()
    _kv_put(client, "kv2-sec", 2, "versioned/app", {"pw": old})
    _kv_put(client, "kv2-sec", 2, "versioned/app", {"pw": new})
    _kv_put(client, "kv1-sec", 1, "plain/app", {"pw": old})
    loaded = load_secrets({
        "CUR": "vault://kv2-sec/versioned/app#pw",
        "OLD": "vault://kv2-sec/versioned/app?version=1#pw",
        "V1": "vault://kv1-sec/plain/app#pw",
        "FORCED": "vault://kv1-sec/plain/app?kv=1#pw",
        "WHOLE": "vault://kv2-sec/versioned/app",
    }, config=kv.config())
    assert loaded.reveal("CUR") == new and loaded.reveal("OLD") == old
    assert loaded.reveal("V1") == old and loaded.reveal("FORCED") == old
    assert json.loads(loaded.reveal("WHOLE")) == {"pw": new}
    versions = {u.version for u in loaded.fetched.values()}
    assert {"1", "2"} <= versions


def test_version_errors(kv: OpenBao) -> None:
    client = _root(kv)
    _kv_put(client, "kv1-sec", 1, "nov/app", {"pw": "x"})
    _kv_put(client, "kv2-sec", 2, "few/app", {"pw": "x"})
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"V1VER": "vault://kv1-sec/nov/app?version=2#pw",
                      "NOVER": "vault://kv2-sec/few/app?version=99#pw",
                      "NOTKV": "vault://sys/mounts#x"}, config=kv.config())
    f = info.value.failures
    assert f["V1VER"].category == "invalid" and "KV v1 has no versions" in str(f["V1VER"])
    assert f["NOVER"].category == "not_found"
    assert f["NOTKV"].category in ("invalid", "access_denied", "not_found")


def test_kv_version_from_config(kv: OpenBao) -> None:
    _kv_put(_root(kv), "kv1-sec", 1, "cfg/app", {"pw": "from-v1"})
    config = Config(vault=kv.config().vault, sections={"secrets": {
        "PW": "vault://kv1-sec/cfg/app#pw", "options": {"kv_versions": {"kv1-sec": 1}}}})
    client = VaultClient.from_config(config)
    loaded = load_secrets(config=config, vault=client)
    assert loaded.reveal("PW") == "from-v1"
    # One GET: the config said v1, so no sys/internal/ui/mounts lookup was made.
    assert client.request_count == 1


# --- faults ---------------------------------------------------------------------------

def _config_for(addr: str, token: str = "irrelevant") -> Config:  # noqa: S107
    return Config(vault=VaultSettings(addr=(addr,), token=token, timeout=10))


def test_server_down_fails_within_the_deadline(leak_canary: LeakCanary) -> None:
    addr = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"A": "vault://kv/app#a", "B": "vault://kv/app#b"},
                     config=_config_for(addr), deadline=2.0)
    assert time.monotonic() - t0 < 3.0
    assert {e.category for e in info.value.failures.values()} <= {"unavailable", "timeout"}
    assert "Vault unreachable" in str(info.value) or "deadline" in str(info.value)
    leak_canary.watch_exception(info.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join()
    for c in held:
        c.close()
    sock.close()


def test_slow_server_times_out_at_the_deadline(silent_server: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"A": "vault://kv/app#a"}, config=_config_for(silent_server), deadline=1.5)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5
    assert info.value.failures["A"].category == "timeout"


def test_sealed_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_openbao(workdir=tmp_path_factory.mktemp("sealed"))
    try:
        server.bao("operator", "seal")
        t0 = time.monotonic()
        with pytest.raises(SecretsLoadError) as info:
            load_secrets({"A": "vault://secret/app#a"},
                         config=_config_for(server.addr, server.token), deadline=2.0,
                         retry=RetryPolicy(base=0.05, cap=0.2))
        assert time.monotonic() - t0 < 3.0
        err = info.value.failures["A"]
        assert err.category == "unavailable"
        assert "sealed" in str(err).lower()
    finally:
        server.stop()


def test_malformed_references_fail_before_any_call(kv: OpenBao) -> None:
    client = _root(kv)
    before = client.request_count
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"X": "vault://onlymount", "Y": "vault:/kv/app", "Z": "vault://kv/a?v=1"},
                     config=kv.config(), vault=client)
    assert client.request_count == before
    assert {e.category for e in info.value.failures.values()} == {"invalid"}
    for ref in ("vault://onlymount", "vault:/kv/app", "vault://kv/a?v=1"):
        assert ref in str(info.value)


def test_missing_json_key_does_not_print_the_json(kv: OpenBao, leak_canary: LeakCanary) -> None:
    secret = leak_canary.new()
    _kv_put(_root(kv), "kv2-sec", 2, "json/app", {"password": secret, "other": secret})
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"U": "vault://kv2-sec/json/app#username"}, config=kv.config())
    assert info.value.failures["U"].category == "not_found"
    assert "username" in str(info.value)
    leak_canary.watch_exception(info.value)


def test_read_many_matches_single_reads(kv: OpenBao) -> None:
    root = _root(kv)
    for i in range(20):
        _kv_put(root, "kv2-sec", 2, f"many/s{i}", {"v": f"value-{i}"})
    _kv_put(root, "kv2-sec", 2, "many/s0", {"v": "value-0b"})  # version 2
    _kv_put(root, "kv1-sec", 1, "many/old", {"v": "v1"})
    paths = [f"kv2-sec/data/many/s{i}" for i in range(20)] + [
        "kv2-sec/data/many/s0", "kv2-sec/data/many/absent", "kv1-sec/many/old"]
    params: list[dict[str, str] | None] = [None] * len(paths)
    params[20] = {"version": "1"}
    client = VaultClient.from_config(kv.config())
    batch = client.read_many(paths, params=params, connections=4)
    for path, opt, got in zip(paths, params, batch, strict=True):
        try:
            single: object = root.read(path, params=opt)
        except VaultkitError as exc:
            assert type(got) is type(exc) and got.status == exc.status  # type: ignore[union-attr]
            continue
        assert isinstance(got, dict) and got["data"] == single["data"]  # type: ignore[index]
    assert batch[20]["data"]["data"] == {"v": "value-0"}  # type: ignore[index]
    # the KV mount lookups as one batch, too
    infos = client.mount_infos(["kv2-sec/many/s1", "kv1-sec/many/old", "sys/x"])
    assert [(i.path, i.kv_version) for i in infos] == [  # type: ignore[union-attr]
        ("kv2-sec", 2), ("kv1-sec", 1), ("sys", 0)]
    spec = {f"S{i}": f"vault://kv2-sec/many/s{i}#v" for i in range(20)}
    spec |= {"OLD": "vault://kv1-sec/many/old#v", "PIN": "vault://kv2-sec/many/s0?version=1#v",
             "GONE": "vault://kv2-sec/many/absent?optional=1#v"}
    loaded = load_secrets(spec, config=kv.config(), vault=VaultClient.from_config(kv.config()))
    assert len(loaded.plan.calls) == 1 and loaded.plan.calls[0].operation == "GET x23"
    assert loaded.reveal("OLD") == "v1" and loaded.reveal("PIN") == "value-0"
    assert loaded.reveal("S0") == "value-0b" and loaded.reveal("S19") == "value-19"
    assert loaded.absent == {"GONE"}


class TestVaultDynamic(SecretSourceContract):
    """``vault+dyn://`` reads any path that answers with data (here a KV v1 mount, whose
    reads carry a lease duration but no lease id) and passes the same contract."""

    @pytest.fixture
    def source(self, kv: OpenBao) -> SecretSource:
        from vaultkit.secrets.sources.vault_dynamic import VaultDynamicSource

        return VaultDynamicSource(config=kv.config(), client=_root(kv))

    @pytest.fixture
    def put(self, kv: OpenBao) -> Put:
        client = _root(kv)
        prefix = f"dyn-contract-{uuid.uuid4().hex[:8]}"

        def put(name: str, value: str) -> str:
            try:
                data = json.loads(value)
            except ValueError:
                data = value
            _kv_put(client, "kv1-sec", 1, f"{prefix}/{name}", {"value": data})
            return f"vault+dyn://kv1-sec/{prefix}/{name}#value"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return "vault+dyn://kv1-sec/dyn-contract/does-not-exist#value"
