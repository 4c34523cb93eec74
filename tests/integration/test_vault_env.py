"""The bao/vault CLI's variables: vaultkit picks what the ``bao`` binary picks, row by row.

Two plain dev servers (A, B) and one ``-dev-tls`` server (T) each hold a marker
``secret/whoami``; for every row, ``bao kv get -field=name secret/whoami`` and
vaultkit (``Config.load(env=...)`` then a read) run with the same environment, and
must reach the same server, or both fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.fake_k8s import _self_signed
from harness.servers import OpenBao, find_binary, start_openbao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config
from vaultkit.errors import VaultkitError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(openbao: OpenBao, openbao_tls: OpenBao, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, str]]:
    second = start_openbao(workdir=tmp_path_factory.mktemp("bao-b"))
    try:
        for name, server in (("A", openbao), ("B", second), ("T", openbao_tls)):
            server.bao("kv", "put", "secret/whoami", f"name={name}")
        work = tmp_path_factory.mktemp("env")
        bad, _, _ = _self_signed(work)  # a CA that signed neither server
        good_dir, bad_dir = work / "good", work / "bad"
        good_dir.mkdir()
        bad_dir.mkdir()
        (good_dir / "ca.pem").write_text(Path(openbao_tls.extra["cacert"]).read_text())
        (bad_dir / "ca.pem").write_text(bad.read_text())
        yield {"A": openbao.addr, "B": second.addr, "T": openbao_tls.addr,
               "tA": openbao.token, "tB": second.token, "tT": openbao_tls.token,
               "good": openbao_tls.extra["cacert"], "bad": str(bad),
               "gooddir": str(good_dir), "baddir": str(bad_dir), "home": str(work)}
    finally:
        second.stop()


# Each row: the environment (placeholders from the fixture), and whom both must reach.
ROWS: list[tuple[dict[str, str], str]] = [
    ({"BAO_ADDR": "A", "VAULT_ADDR": "B", "BAO_TOKEN": "tA", "VAULT_TOKEN": "tB"}, "A"),
    ({"VAULT_ADDR": "B", "VAULT_TOKEN": "tB"}, "B"),
    ({"BAO_ADDR": "B", "VAULT_TOKEN": "tB"}, "B"),
    ({"BAO_ADDR": "A", "VAULT_ADDR": "B", "VAULT_TOKEN": "tA"}, "A"),
    ({"VAULT_ADDR": "B", "BAO_TOKEN": "tB", "VAULT_TOKEN": "tA"}, "B"),
    ({"BAO_ADDR": "A", "BAO_TOKEN": "tB", "VAULT_TOKEN": "tA"}, "error"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "good", "VAULT_CACERT": "bad"}, "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "bad", "VAULT_CACERT": "good"}, "error"),
    ({"VAULT_ADDR": "T", "VAULT_TOKEN": "tT", "VAULT_CACERT": "good"}, "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CAPATH": "gooddir", "VAULT_CAPATH": "baddir"}, "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "VAULT_CAPATH": "gooddir"}, "T"),
    # CACERT and CAPATH add up (one of them trusting the server is enough)
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "bad", "BAO_CAPATH": "gooddir"}, "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "VAULT_CACERT": "bad", "BAO_CAPATH": "baddir"},
     "error"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_SKIP_VERIFY": "true", "VAULT_CACERT": "bad"},
     "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "VAULT_SKIP_VERIFY": "true",
      "BAO_SKIP_VERIFY": "false"}, "error"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "good",
      "BAO_TLS_SERVER_NAME": "wrong.example"}, "error"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "good",
      "VAULT_TLS_SERVER_NAME": "localhost"}, "T"),
    ({"BAO_ADDR": "T", "BAO_TOKEN": "tT", "BAO_CACERT": "good",
      "BAO_TLS_SERVER_NAME": "localhost", "VAULT_TLS_SERVER_NAME": "wrong.example"}, "T"),
]


def _env(row: dict[str, str], servers: dict[str, str]) -> dict[str, str]:
    return {k: servers.get(v, v) for k, v in row.items()}


def _bao(env: dict[str, str], home: str) -> str:
    binary = find_binary("bao")
    assert binary
    base = {"PATH": os.environ.get("PATH", ""), "HOME": home}
    proc = subprocess.run([binary, "kv", "get", "-field=name", "secret/whoami"],
                          env={**base, **env}, capture_output=True, text=True, timeout=30,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "error"


def _vaultkit(env: dict[str, str], home: str) -> str:
    try:
        config = Config.load(env=env, cwd=home)
        body = VaultClient(config.vault).read("secret/data/whoami", timeout=5)
    except VaultkitError:
        return "error"
    return str(body["data"]["data"]["name"])


@pytest.mark.parametrize("row, expected", ROWS,
                         ids=[",".join(f"{k}={v}" for k, v in r.items()) for r, _ in ROWS])
def test_vaultkit_chooses_what_bao_chooses(servers: dict[str, str], row: dict[str, str],
                                          expected: str) -> None:
    env = _env(row, servers)
    assert _bao(env, servers["home"]) == expected  # the table is what bao does
    assert _vaultkit(env, servers["home"]) == expected


@pytest.mark.parametrize("env, fix", [
    ({"BAO_ADDR": "T"}, "BAO_CACERT/VAULT_CACERT"),
    ({"BAO_ADDR": "T", "BAO_CACERT": "good", "BAO_TLS_SERVER_NAME": "wrong.example"},
     "TLS_SERVER_NAME"),
    ({"BAO_ADDR": "httpsA"}, "scheme of BAO_ADDR/VAULT_ADDR"),
])
def test_a_tls_failure_names_the_setting_that_fixes_it(servers: dict[str, str],
                                                       env: dict[str, str], fix: str) -> None:
    from vaultkit.errors import TLSError

    servers = {**servers, "httpsA": servers["A"].replace("http://", "https://")}
    config = Config.load(env={**_env(env, servers), "BAO_TOKEN": servers["tT"]},
                         cwd=servers["home"])
    with pytest.raises(TLSError) as info:
        VaultClient(config.vault).read("secret/data/whoami", timeout=5)
    assert fix in str(info.value)
