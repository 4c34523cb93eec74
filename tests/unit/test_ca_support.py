"""Shared helpers for the CA tests (no tests here): a CA home built once per module.

The intermediate and root keys in these fixtures use a low KDF round count, because
those tests are not about the KDF; ``test_ca_keys.py`` checks the 600,000-round default
and the CLI tests use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases
from vaultkit.ca.profiles import DEFAULT_PROFILES_TOML

ROOT_PW = "root passphrase for the tests"
CA_PW = "intermediate passphrase for tests"
LEAF_PW = "leaf passphrase for the tests"
P12_PW = "p12 passphrase for the tests"
FAST_ROUNDS = 1000
CRL_URL = "http://pki.vaultkit.internal/intermediate.crl"
ROOT_CRL_URL = "http://pki.vaultkit.internal/root.crl"
PERMIT_DNS = ("vaultkit.internal",)
PERMIT_IP = ("127.0.0.0/8",)


def passphrases() -> StaticPassphrases:
    return StaticPassphrases({"root": ROOT_PW, "intermediate": CA_PW, "leaf": LEAF_PW,
                              "p12": P12_PW})


@dataclass
class TestCA:
    __test__ = False  # not a pytest class

    ca: CertificateAuthority
    home: CAHome
    root_key: Path
    workdir: Path

    def issue(self, name: str, profile: str, *sans: str, **kw: object) -> Path:
        """Issue a leaf into workdir/leaves; returns the cert path."""
        issued = self.ca.issue(name, profile=profile, sans=list(sans),
                               out_dir=self.workdir / "leaves", **kw)  # type: ignore[arg-type]
        return issued.cert_path


def write_profiles(home: Path, *, crl_url: str | None = CRL_URL,
                   root_crl_url: str | None = ROOT_CRL_URL) -> None:
    home.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_PROFILES_TOML
    if crl_url:
        text = text.replace('crl_url = ""', f'crl_url = "{crl_url}"', 1)
    if root_crl_url:
        text = text.replace('root_crl_url = ""', f'root_crl_url = "{root_crl_url}"', 1)
    (home / "profiles.toml").write_text(text)


def build_ca(workdir: Path, *, kdf_rounds: int = FAST_ROUNDS, key_type: str | None = None,
             permit_dns: tuple[str, ...] = PERMIT_DNS, permit_ip: tuple[str, ...] = PERMIT_IP,
             name: str = "vaultkit Test") -> TestCA:
    home = CAHome(workdir / "home")
    write_profiles(home.root_dir)
    ca = CertificateAuthority(home, passphrases=passphrases(), kdf_rounds=kdf_rounds)
    root_key = workdir / "offline" / "root.key"
    root_key.parent.mkdir(parents=True, exist_ok=True)
    ca.init_root(f"{name} Root", root_key_out=root_key, key_type=key_type)
    ca.create_intermediate(f"{name} Issuing CA", permit_dns=list(permit_dns),
                           permit_ip=list(permit_ip), key_type=key_type)
    ca.sign_intermediate(root_key)
    return TestCA(ca=ca, home=home, root_key=root_key, workdir=workdir)


def vaultkit_cmd() -> list[str]:
    exe = shutil.which("vaultkit", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "vaultkit.cli"]


def run_vaultkit(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vaultkit_cmd(), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)
