"""Directory modes whatever the umask, and CA homes that others could write to."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from unit.test_ca_support import build_ca, passphrases
from vaultkit.ca import CAHome, CertificateAuthority, rotation
from vaultkit.errors import InsecureFileError


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_no_directory_is_group_or_world_writable_under_umask_000(tmp_path: Path,
                                                                 umask_000: None) -> None:
    work = tmp_path / "w"  # nothing exists yet: vaultkit creates every directory below
    home = CAHome(work / "home")
    ca = CertificateAuthority(home, passphrases=passphrases(), kdf_rounds=1000)
    root_key = work / "usb" / "root.key"
    ca.init_root("Umask Root", root_key_out=root_key)
    ca.create_intermediate("Umask Issuing", permit_dns=["vaultkit.internal"])
    ca.sign_intermediate(root_key)
    ca.issue("b", sans=["DNS:b.vaultkit.internal"], out_dir=work / "x" / "y")
    ca.issue("c", sans=["DNS:c.vaultkit.internal"])  # HOME/issued
    # files.atomic_write makes the missing folders of an --out path (ca export --out)
    p12 = ca.export_p12("b", directory=work / "x" / "y", out=work / "p12" / "deep" / "b.p12")
    rotation.replace_intermediate(ca, root_key)  # HOME/retired/SERIAL
    ca.close()
    dirs = [work, *(p for p in work.rglob("*") if p.is_dir())]
    assert {home.crl_dir, home.issued_dir, home.retired_dir, home.private_dir} <= set(dirs)
    for d in dirs:
        mode = stat.S_IMODE(d.stat().st_mode)
        assert not mode & 0o022, f"{d} is {mode:04o}"
    for private in (home.root_dir, home.private_dir, home.retired_dir, root_key.parent,
                    p12.parent, p12.parent.parent,
                    *home.retired_dir.iterdir()):
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
    for f in (home.inventory, home.intermediate_key, root_key, home.issued_dir / "c.key"):
        assert not stat.S_IMODE(f.stat().st_mode) & 0o077, f


@pytest.mark.parametrize(("where", "mode", "fix"), [("", 0o777, "go-w"), ("", 0o775, "go-w"),
                                                    ("private", 0o750, "700"),
                                                    ("crl", 0o757, "go-w")])
def test_a_home_others_can_write_to_is_refused(tmp_path: Path, where: str, mode: int,
                                               fix: str) -> None:
    tca = build_ca(tmp_path)
    tca.ca.close()
    target = tca.home.root_dir / where if where else tca.home.root_dir
    target.chmod(mode)
    try:
        with pytest.raises(InsecureFileError) as info:
            tca.ca.issue("x", sans=["DNS:x.vaultkit.internal"])
        assert f"(run: chmod {fix} {target})" in str(info.value)
        assert f"{mode:04o}" in str(info.value)
    finally:
        target.chmod(0o700 if where in ("", "private") else 0o755)
    tca.ca.issue("x", sans=["DNS:x.vaultkit.internal"])
