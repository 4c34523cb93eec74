"""Quickstart step: an offline root, an intermediate, two mTLS certificates, a revocation."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path


def step(workdir: Path, say: Callable[[str], None]) -> None:
    from vaultkit.ca import CAHome, CertificateAuthority, StaticPassphrases, fingerprint
    from vaultkit.errors import CertificateRejectedError

    # Demo passphrases, random and never printed; real ones come from a prompt, the
    # VAULTKIT_ROOT_PASSPHRASE / VAULTKIT_CA_PASSPHRASE variables or the OS keyring.
    ca = CertificateAuthority(CAHome(workdir / "ca"), passphrases=StaticPassphrases({
        "root": secrets.token_urlsafe(18), "intermediate": secrets.token_urlsafe(18)}))
    root_key = workdir / "offline-media" / "root.key"
    root_key.parent.mkdir()
    root = ca.init_root("Quickstart Root", root_key_out=root_key)
    say(f"root CA (P-384, 10 years), fingerprint {fingerprint(root)[:23]}...")
    ca.create_intermediate("Quickstart Issuing CA", permit_dns=["svc.internal"],
                           permit_ip=["127.0.0.0/8"])
    ca.sign_intermediate(root_key)  # the only step that reads the root key
    say("intermediate signed offline: pathlen 0, limited to *.svc.internal and 127.0.0.0/8")
    out = workdir / "certs"
    api = ca.issue("api", profile="server", sans=["DNS:api.svc.internal", "IP:127.0.0.1"],
                   out_dir=out)
    worker = ca.issue("worker", profile="client",
                      sans=["URI:spiffe://svc.internal/ns/prod/sa/worker"], out_dir=out)
    say(f"issued {api.name} (serverAuth) and {worker.name} (clientAuth), valid until "
        f"{api.not_after:%Y-%m-%d}; keys written 0600 to {out.name}/")
    ca.verify(worker.cert_path, purpose="client")
    ca.revoke("worker", reason="keyCompromise")
    try:
        ca.verify(worker.cert_path, purpose="client")
    except CertificateRejectedError as exc:
        say(f"after `revoke worker`: {type(exc).__name__}: {exc.message}")
    say(f"{len(ca.list())} certificates in the inventory; CRL at ca/crl/intermediate.crl")
    ca.close()
