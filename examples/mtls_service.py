"""An mTLS HTTPS service that survives a certificate renewal and a revocation while running.

    python examples/mtls_service.py                 # a throw-away CA in a temp directory
    python examples/mtls_service.py --home ./ca      # an existing CA home (needs
                                                     # VAULTKIT_CA_PASSPHRASE or a prompt)

The server (``vaultkit.tls.https_server``) requires a client certificate, checks the
CRLs of the whole chain (root and intermediate), and reloads its certificate, key and
CRLs when the files change: no restart. The script then

1. calls it with a client certificate;
2. renews the server's certificate: new connections see the new serial;
3. revokes one client and re-signs the CRL: that client's next connection is refused,
   while the other client still gets in.
"""

from __future__ import annotations

import argparse
import http.server
import secrets
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509

from vaultkit import tls
from vaultkit.ca import CAHome, CertificateAuthority, EnvKeyringPrompt, StaticPassphrases

HOST = "api.demo.internal"


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = x509.load_der_x509_certificate(self.connection.getpeercert(binary_form=True)
                                              or b"")
        name = next(str(s.value) for s in peer.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value)
        body = f"hello {name}, over {self.connection.version()}\n".encode()
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


def call(port: int, ctx: ssl.SSLContext) -> tuple[str, int]:
    """(the answer, the serial of the server's certificate)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as conn:
        serial = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True) or b""
                                                ).serial_number
        conn.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(4096):  # TLS 1.3: a refused client learns it here
            data += chunk
    return data.split(b"\r\n\r\n", 1)[-1].decode().strip(), serial


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
                          sans=[f"DNS:{HOST}", "IP:127.0.0.1"], out_dir=out, days=1)
        clients = {who: ca.issue(f"demo-{who}-{suffix}", profile="client",
                                 sans=[f"URI:spiffe://demo.internal/ns/demo/sa/{who}"],
                                 out_dir=out, days=1) for who in ("alice", "bob")}
        home = ca.home
        assert server.key_path is not None
        httpd = tls.https_server(("127.0.0.1", 0), Hello, server.chain_path, server.key_path,
                                 ca=home.root_cert, crl=[home.root_crl, home.intermediate_crl],
                                 interval=0.2)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        port = httpd.server_address[1]
        ctx = {who: tls.client_context(c.chain_path, c.key_path, ca=home.root_cert)  # type: ignore[arg-type]
               for who, c in clients.items()}
        try:
            answer, serial = call(port, ctx["alice"])
            print(f"{answer} (server certificate {serial:x})")

            renewed = ca.renew(server.name, out_dir=out, days=1)
            deadline = time.monotonic() + 10
            while call(port, ctx["alice"])[1] != int(renewed.serial, 16):
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not pick up its renewed certificate")
                time.sleep(0.1)
            print(f"renewed without a restart: server certificate {int(renewed.serial, 16):x}")

            ca.revoke(clients["bob"].name, reason="keyCompromise")  # re-signs the CRL
            deadline = time.monotonic() + 10
            while True:
                try:
                    call(port, ctx["bob"])
                except (ssl.SSLError, OSError) as exc:
                    print(f"bob revoked without a restart: refused ({type(exc).__name__})")
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not pick up the new CRL")
                time.sleep(0.1)
            print(f"{call(port, ctx['alice'])[0]} (still welcome)")
        finally:
            httpd.shutdown()
            httpd.server_close()
            ca.close()


if __name__ == "__main__":
    main()
