"""A stand-in for Vault's ``aws`` auth method (IAM flavour), forwarding to a real (moto) STS.

OpenBao 2.x no longer builds the ``aws`` auth plugin in (``bao auth enable aws`` answers
"plugin not found in the catalog: aws"; ``bao plugin list auth`` shows approle, cert, jwt,
kubernetes, oidc, userpass), and the external plugin is not on PyPI. So this server does
what Vault's ``builtin/credential/aws`` ``pathLoginUpdateIam`` does with a login request:

1. decode ``iam_http_request_method``/``iam_request_url``/``iam_request_body``/``iam_request_headers``
   (base64; headers are a JSON map of name -> [values]);
2. require ``POST``, an ``Action=GetCallerIdentity`` body and, when configured, the
   ``X-Vault-AWS-IAM-Server-ID`` header, which must also be covered by the signature
   (anti-replay: a request signed for another Vault is refused);
3. rebuild the request with the *signed* Host and send it to the configured STS endpoint
   (here moto), parse ``GetCallerIdentityResult/Arn`` and compare it with the role's
   ``bound_iam_principal_arn``.

Real STS verifies the SigV4 signature; moto does not, so this server does it (step 2b),
with botocore's signer and the secret key the test registered, and checks the credential
scope names ``us-east-1``/``sts``, which the global STS endpoint requires.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.json_http import JsonHandler

SERVER_ID_HEADER = "X-Vault-AWS-IAM-Server-ID"


@dataclass
class FakeAwsAuth:
    url: str
    sts_endpoint: str
    server: ThreadingHTTPServer
    #: role name -> bound_iam_principal_arn
    roles: dict[str, str] = field(default_factory=dict)
    #: access key id -> secret key, to verify signatures (moto does not)
    secret_keys: dict[str, str] = field(default_factory=dict)
    server_id_header_value: str | None = None
    #: issued client tokens -> metadata (served by auth/token/lookup-self)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: decoded login requests, for assertions on their shape
    logins: list[dict[str, Any]] = field(default_factory=list)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoginRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _verify_signature(fake: FakeAwsAuth, method: str, url: str, body: str,
                      headers: dict[str, str]) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = headers.get("Authorization", "")
    parts = dict(p.strip().split("=", 1) for p in auth.removeprefix("AWS4-HMAC-SHA256 ")
                 .split(","))
    access_key, _date, region, service, _ = parts["Credential"].split("/")
    if (region, service) != ("us-east-1", "sts"):
        raise LoginRefused(400, f"credential should be scoped to us-east-1/sts, not "
                                f"{region}/{service}")
    signed = parts["SignedHeaders"].split(";")
    if fake.server_id_header_value and SERVER_ID_HEADER.lower() not in signed:
        raise LoginRefused(400, "vault header wasn't signed")
    if "host" not in signed:
        raise LoginRefused(400, "host header wasn't signed")
    secret = fake.secret_keys.get(access_key)
    if secret is None:
        raise LoginRefused(403, "InvalidClientTokenId from STS")
    request = AWSRequest(method=method, url=url, data=body, headers={
        k: v for k, v in headers.items() if k.lower() in signed and k.lower() != "authorization"})
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(access_key, secret, headers.get("X-Amz-Security-Token")),
                       "sts", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise LoginRefused(403, "SignatureDoesNotMatch from STS")


def _login(fake: FakeAwsAuth, payload: dict[str, Any]) -> dict[str, Any]:
    role = str(payload.get("role") or "")
    if role not in fake.roles:
        raise LoginRefused(400, f"entry for role {role} not found")
    method = str(payload.get("iam_http_request_method"))
    url = base64.b64decode(payload["iam_request_url"]).decode()
    body = base64.b64decode(payload["iam_request_body"]).decode()
    raw_headers = json.loads(base64.b64decode(payload["iam_request_headers"]))
    headers = {k: (v[0] if isinstance(v, list) else v) for k, v in raw_headers.items()}
    fake.logins.append({"method": method, "url": url, "body": body, "headers": headers,
                        "role": role})
    if method != "POST":
        raise LoginRefused(400, "invalid iam_http_request_method; currently only 'POST' is "
                                "supported")
    if urllib.parse.parse_qs(body).get("Action") != ["GetCallerIdentity"]:
        raise LoginRefused(400, "invalid request body")
    if fake.server_id_header_value is not None and headers.get(
            SERVER_ID_HEADER) != fake.server_id_header_value:
        raise LoginRefused(400, "error validating X-Vault-AWS-IAM-Server-ID header")
    _verify_signature(fake, method, url, body, headers)
    # Vault: targetUrl = sts_endpoint + RequestURI, request.Host = the signed URL's host.
    parsed = urllib.parse.urlsplit(url)
    target = fake.sts_endpoint.rstrip("/") + (parsed.path or "/")
    forwarded = urllib.request.Request(target, data=body.encode(), method="POST",  # noqa: S310
                                       headers={**headers, "Host": parsed.netloc})
    with urllib.request.urlopen(forwarded, timeout=10) as resp:  # noqa: S310 - moto on loopback
        tree = ET.fromstring(resp.read())  # noqa: S314 - moto's reply on loopback
    arn = next(el.text for el in tree.iter() if el.tag.endswith("Arn"))
    if arn != fake.roles[role]:
        raise LoginRefused(403, f"IAM Principal {arn!r} does not belong to the role {role!r}")
    token = "s." + secrets.token_urlsafe(18)
    meta = {"role": role, "canonical_arn": arn, "auth_type": "iam"}
    fake.tokens[token] = meta
    return {"auth": {"client_token": token, "policies": ["default"], "metadata": meta,
                     "lease_duration": 60, "renewable": True}}


def _handler(fake: FakeAwsAuth) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["v1", "auth"] or parts[3] != "login":
                self._send(404, {"errors": [f"no handler for route {self.path!r}"]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                self._send(200, _login(fake, json.loads(self.rfile.read(length) or b"{}")))
            except LoginRefused as exc:
                self._send(exc.status, {"errors": [str(exc)]})

        do_PUT = do_POST

        def do_GET(self) -> None:
            meta = fake.tokens.get(self.headers.get("X-Vault-Token") or "")
            if self.path != "/v1/auth/token/lookup-self" or meta is None:
                self._send(403, {"errors": ["permission denied"]})
                return
            self._send(200, {"data": {"meta": meta, "policies": ["default"], "ttl": 60}})


    return Handler


def start_fake_aws_auth(sts_endpoint: str, *,
                        server_id_header_value: str | None = None) -> FakeAwsAuth:
    """Serve ``/v1/auth/<mount>/login`` (aws, IAM) on a free port of 127.0.0.1, in a thread."""
    fake = FakeAwsAuth(url="", sts_endpoint=sts_endpoint, server=None,  # type: ignore[arg-type]
                       server_id_header_value=server_id_header_value)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.server = server
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="fake-aws-auth", daemon=True).start()
    return fake
