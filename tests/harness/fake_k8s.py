"""A tiny fake Kubernetes API server: just the TokenReview endpoint OpenBao's kubernetes auth calls.

OpenBao's kubernetes auth method does not trust the service-account JWT a client presents; it
asks the cluster (``POST /apis/authentication.k8s.io/v1/tokenreviews`` at ``kubernetes_host``)
whether the token is valid and who it belongs to. This server answers that one call: tokens
registered with :meth:`FakeKubernetes.add_token` are ``authenticated`` as their service account,
every other token is not. It serves HTTPS with a throwaway self-signed certificate, because
OpenBao refuses a ``kubernetes_host`` config without ``kubernetes_ca_cert`` when it is not
running in a pod (``disable_local_ca_jwt=true``).

>>> k8s = start_fake_kubernetes()                       # doctest: +SKIP
>>> jwt = k8s.service_account_jwt("apps", "web")        # doctest: +SKIP
>>> k8s.url, k8s.ca_pem                                 # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.json_http import JsonHandler

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def _self_signed(workdir: Path) -> tuple[Path, Path, str]:
    """A P-256 certificate for 127.0.0.1 (CA:true, so it can be its own trust anchor)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube-apiserver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = workdir / "kube.crt"
    key_path = workdir / "kube.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path, cert_pem.decode()


@dataclass
class FakeKubernetes:
    url: str
    ca_pem: str
    server: ThreadingHTTPServer
    #: token -> (namespace, service account name, uid)
    tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: Every TokenReview request body received (the tests check the token was forwarded).
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def add_token(self, token: str, namespace: str, name: str) -> str:
        """Register ``token`` as a valid token of ``namespace/name``; returns the SA uid."""
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sa:{namespace}:{name}"))
        self.tokens[token] = (namespace, name, uid)
        return uid

    def service_account_jwt(self, namespace: str, name: str, *, register: bool = True) -> str:
        """A syntactically valid projected service-account token (the ``kubernetes.io`` claim form).

        The signature is junk: OpenBao only parses the claims locally (it verifies the
        signature only when ``pem_keys`` are configured) and trusts the TokenReview answer.
        """
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sa:{namespace}:{name}"))
        now = int(time.time())
        claims = {
            "iss": "https://kubernetes.default.svc.cluster.local",
            "aud": ["https://kubernetes.default.svc.cluster.local"],
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "iat": now, "nbf": now, "exp": now + 3600,
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": name, "uid": uid},
                              "pod": {"name": f"{name}-pod", "uid": str(uuid.uuid4())}},
        }

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "RS256", "kid": "fake"}).encode())
        body = b64(json.dumps(claims).encode())
        token = f"{header}.{body}.{b64(uuid.uuid4().bytes * 8)}"
        if register:
            self.add_token(token, namespace, name)
        return token

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != TOKENREVIEW_PATH:
                self._send(404, {"kind": "Status", "status": "Failure", "code": 404})
                return
            length = int(self.headers.get("Content-Length") or 0)
            review = json.loads(self.rfile.read(length) or b"{}")
            fake.reviews.append(review)
            token = str((review.get("spec") or {}).get("token") or "")
            known = fake.tokens.get(token)
            if known is None:
                status: dict[str, Any] = {"authenticated": False,
                                          "error": "invalid bearer token"}
            else:
                ns, name, uid = known
                status = {"authenticated": True, "audiences": review.get("spec", {}).get(
                    "audiences") or [], "user": {
                    "username": f"system:serviceaccount:{ns}:{name}", "uid": uid,
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]}}
            self._send(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "spec": review.get("spec") or {}, "status": status})


    return Handler


def start_fake_kubernetes(workdir: Path | None = None) -> FakeKubernetes:
    """Serve the fake TokenReview API over HTTPS on a free port of 127.0.0.1, in a thread."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vk-k8s-"))
    cert_path, key_path, ca_pem = _self_signed(workdir)
    fake = FakeKubernetes(url="", ca_pem=ca_pem, server=None)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    fake.server = server
    fake.url = f"https://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="fake-k8s", daemon=True).start()
    return fake
