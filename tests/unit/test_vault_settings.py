"""The bao/vault CLI's variables (BAO_* over VAULT_*), proxies from the environment, TLS setup,
and which auth method a client picks. No servers: tests/integration/test_vault_env.py checks
the same precedence against the ``bao`` binary."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from vaultkit.backends.vault.auth import plan
from vaultkit.backends.vault.transport import bypasses_proxy, proxy_for, ssl_context
from vaultkit.config import VAULT_ENV, Config, VaultSettings, vault_env_sources
from vaultkit.errors import ConfigError

VALUES = {"ADDR": ("http://bao:8200", "http://vault:8200", ("http://bao:8200",),
                   ("http://vault:8200",)),
          "SKIP_VERIFY": ("true", "false", True, False)}


@pytest.mark.parametrize("name, key", VAULT_ENV)
def test_bao_wins_over_vault_and_vault_is_the_fallback(name: str, key: str) -> None:
    bao, vault, bao_value, vault_value = VALUES.get(name, ("from-bao", "from-vault",
                                                          "from-bao", "from-vault"))
    both = Config.load(env={f"BAO_{name}": bao, f"VAULT_{name}": vault}, cwd="/nonexistent")
    assert getattr(both.vault, key) == bao_value
    only = Config.load(env={f"VAULT_{name}": vault}, cwd="/nonexistent")
    assert getattr(only.vault, key) == vault_value
    assert vault_env_sources({f"BAO_{name}": bao, f"VAULT_{name}": vault}) == {key: f"BAO_{name}"}
    mine = f"VAULTKIT_VAULT_{key.upper()}"
    over = Config.load(env={f"BAO_{name}": bao, mine: vault}, cwd="/nonexistent")
    assert getattr(over.vault, key) == vault_value  # vaultkit's own variable beats both
    assert vault_env_sources({f"BAO_{name}": bao, mine: vault})[key] == mine


def test_the_table_has_every_cli_variable() -> None:
    assert [n for n, _ in VAULT_ENV] == ["ADDR", "TOKEN", "CACERT", "CAPATH", "CLIENT_CERT",
                                         "CLIENT_KEY", "SKIP_VERIFY", "TLS_SERVER_NAME",
                                         "NAMESPACE"]


def test_an_unparsable_skip_verify_is_refused() -> None:
    with pytest.raises(ConfigError, match="skip_verify"):
        Config.load(env={"BAO_SKIP_VERIFY": "maybe"}, cwd="/nonexistent")


def test_skip_verify_warns_on_every_client(caplog: pytest.LogCaptureFixture) -> None:
    settings = VaultSettings(addr=("https://vault:8200",), skip_verify=True)
    with caplog.at_level(logging.WARNING, logger="vaultkit.vault"):
        ssl_context(settings)
        ssl_context(settings)
    assert sum("verification of Vault is OFF" in r.message for r in caplog.records) == 2


def test_capath_is_read_file_by_file_and_adds_to_cacert(tmp_path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def ca(name: str) -> Path:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        path = tmp_path / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    folder = tmp_path / "cas"
    folder.mkdir()
    ca("one").rename(folder / "one.pem")
    ca("two").rename(folder / "two.crt")
    single = ca("three")
    ctx = ssl_context(VaultSettings(capath=str(folder), cacert=str(single)))
    assert sorted(c["subject"][0][0][1] for c in ctx.get_ca_certs()) == ["one", "three", "two"]
    (folder / "junk.txt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="CAPATH"):
        ssl_context(VaultSettings(capath=str(folder)))


@pytest.mark.parametrize("host, port, no_proxy, expected", [
    ("127.0.0.1", 8200, "127.0.0.0/8", True),
    ("127.0.0.1", 8200, "10.0.0.0/8,192.168.0.0/16", False),
    ("::1", 8200, "::1/128", True),
    ("127.0.0.1", 8200, "127.0.0.1:8200", True),
    ("127.0.0.1", 8200, "127.0.0.1:8201", False),
    ("vault.internal", 8200, "vault.internal:8200", True),
    ("vault.internal", 8200, ".internal", True),
    ("vault.internal", 8200, "internal", True),
    ("vault.internal", 8200, "ternal", False),
    ("vault.internal", 8200, "*", True),
    ("vault.internal", 8200, " localhost , vault.internal ", True),
    ("vault.internal", 8200, "", False),
])
def test_no_proxy_entries(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is expected


@pytest.mark.parametrize("url, env, expected", [
    ("https://v:8200", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://v:8200", {"HTTP_PROXY": "http://p:3128"}, None),
    ("http://v:8200", {"HTTP_PROXY": "p:3128"}, "http://p:3128"),
    ("http://v:8200", {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1"},
     "http://lower:1"),
    ("https://v:8200", {"ALL_PROXY": "https://p:443"}, "https://p:443"),
    ("https://v:8200", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "v"}, None),
    ("http://v:8200", {"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}, None),  # httpoxy
])
def test_proxy_for(url: str, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, env) == expected


def test_other_proxy_schemes_are_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY uses the socks5:// scheme"):
        proxy_for("https://v:8200", {"HTTPS_PROXY": "socks5://p:1080"})


# --- which auth method ------------------------------------------------------------------

@pytest.mark.parametrize("settings, methods", [
    ({"token": "t"}, ("token", "token_file")),
    ({}, ("token", "token_file")),
    ({"token": "t", "role_id": "r"}, ("approle",)),
    ({"token": "t", "role": "web", "jwt_file": "/j"}, ("jwt",)),
    ({"token": "t", "role": "web"}, ("aws",)),
    ({"token": "t", "token_file": "/f"}, ("token_file",)),
    ({"token": "t", "role_id": "r", "auth": "token"}, ("token", "token_file")),
    ({"role_id": "r", "auth": "approle"}, ("approle",)),
])
def test_a_configured_method_comes_before_an_ambient_token(settings: dict[str, str],
                                                           methods: tuple[str, ...]) -> None:
    p = plan(VaultSettings(**settings))  # type: ignore[arg-type]
    assert p.methods == methods and p.reason


def test_kubernetes_is_configured_by_its_token_file(tmp_path: Path) -> None:
    sa = tmp_path / "token"
    sa.write_text("jwt")
    p = plan(VaultSettings(token="t", role="web", kubernetes_jwt_file=str(sa)))
    assert p.methods == ("kubernetes", "aws") and "service-account" in p.reason


def test_an_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown vault auth method"):
        plan(VaultSettings(auth="ldap"))


# --- what importing costs ------------------------------------------------------------------

def test_importing_vaultkit_or_the_client_imports_no_urllib3() -> None:
    probe = ("import sys, vaultkit\nfrom vaultkit.backends.vault import VaultClient, vault_client"
             "\nprint(sorted(m for m in ('urllib3', 'hvac', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_nothing_in_src_imports_hvac_or_requests() -> None:
    import vaultkit

    root = Path(vaultkit.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for mod in ("hvac", "requests"):
            assert f"import {mod}" not in text and f"from {mod}" not in text, path


@pytest.mark.parametrize("kind", ["token_file", "secret_id_file", "jwt_file", "kubernetes"])
def test_an_unreadable_credential_file_is_a_config_error_that_keeps_no_bytes(
        tmp_path: Path, kind: str) -> None:
    # A UnicodeDecodeError keeps the whole file (.object): it must not be raised, chained
    # or left as __context__, whatever the login method reading the file.
    from vaultkit.backends.vault import VaultClient
    from vaultkit.backends.vault.mock import MockTransport, json_response

    secret = b"\xffhvs.canary-" + b"7" * 24
    path = tmp_path / "cred"
    path.write_bytes(secret)
    path.chmod(0o600)
    settings = {"token_file": {"token_file": str(path)},
                "secret_id_file": {"role_id": "r", "secret_id_file": str(path)},
                "jwt_file": {"role": "r", "jwt_file": str(path)},
                "kubernetes": {"role": "r", "kubernetes_jwt_file": str(path)}}[kind]
    client = VaultClient(VaultSettings(addr=("http://vault:8200",), **settings),  # type: ignore[arg-type]
                         transport=MockTransport(lambda request: json_response(500)))
    with pytest.raises(ConfigError) as info:
        client.login()
    exc: BaseException | None = info.value
    assert "not UTF-8" in str(info.value)
    while exc is not None:
        assert "hvs.canary-" not in repr(vars(exc)) + repr(exc.args)
        exc = exc.__cause__ or exc.__context__
