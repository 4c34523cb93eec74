"""An HTTPS service and a client that authenticate each other with vaultkit-issued certificates.

    python examples/mtls_service.py                 # a throw-away CA in a temp directory
    python examples/mtls_service.py --home ./ca      # an existing CA home (needs
                                                     # VAULTKIT_CA_PASSPHRASE or a prompt)

The server requires a client certificate (CERT_REQUIRED), checks the intermediate CRL, and
greets the client by its certificate's common name. The client verifies the server's name.
"""

from __future__ import annotations

import argparse
import http.server
import secrets
import ssl
import tempfile
import threading
import urllib.request
from pathlib import Path

from vaultkit import tls
from vaultkit.ca import CAHome, CertificateAuthority, EnvKeyringPrompt, StaticPassphrases


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = self.connection.getpeercert() or {}
        cn = dict(x[0] for x in peer.get("subject", ()))["commonName"]
        body = f"hello {cn}, over {self.connection.version()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def demo_ca(workdir: Path) -> CertificateAuthority:
    ca = CertificateAuthority(CAHome(workdir / "ca"), passphrases=StaticPassphrases({
        "root": secrets.token_urlsafe(18), "intermediate": secrets.token_urlsafe(18)}))
    ca.init_root("mTLS Demo Root", root_key_out=workdir / "root.key")
    ca.create_intermediate("mTLS Demo Issuing CA", permit_dns=["demo.internal"],
                           permit_ip=["127.0.0.0/8"])
    ca.sign_intermediate(workdir / "root.key")
    return ca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", help="an existing CA home (default: a temporary demo CA)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vk-mtls-") as tmp:
        work = Path(tmp)
        ca = (CertificateAuthority(CAHome(args.home), passphrases=EnvKeyringPrompt())
              if args.home else demo_ca(work))
        out = work / "certs"
        suffix = secrets.token_hex(3)  # names are unique per CA home; reruns get new ones
        server = ca.issue(f"demo-server-{suffix}", profile="server",
                          sans=["DNS:api.demo.internal", "IP:127.0.0.1"], out_dir=out, days=1)
        client = ca.issue(f"demo-client-{suffix}", profile="client",
                          sans=["URI:spiffe://demo.internal/ns/demo/sa/client"], out_dir=out,
                          days=1)
        root, crl = ca.home.root_cert, ca.home.intermediate_crl

        httpd = http.server.HTTPServer(("127.0.0.1", 0), Hello)
        sctx = tls.server_context(server.chain_path, server.key_path, ca=root,  # type: ignore[arg-type]
                                  crl=crl)
        httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        port = httpd.server_address[1]
        try:
            cctx = tls.client_context(client.chain_path, client.key_path, ca=root)  # type: ignore[arg-type]
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=cctx,
                                        timeout=10) as resp:
                print(resp.read().decode().strip())
            # Without a client certificate the server refuses the connection.
            anonymous = ssl.create_default_context(cafile=str(root))
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/",
                                            context=anonymous, timeout=10) as resp:
                    resp.read()
                print("unexpected: an anonymous client got in")
            except OSError as exc:
                print(f"anonymous client refused: {type(exc).__name__}")
        finally:
            httpd.shutdown()
            httpd.server_close()
            ca.close()


if __name__ == "__main__":
    main()
