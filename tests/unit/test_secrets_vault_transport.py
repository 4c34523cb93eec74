"""VaultClient against its in-memory transport twin (no sockets): what goes out, what comes back.

The wire itself (framing, keep-alive, deadlines, hostile peers) is tested against
sockets in tests/integration/test_vault_hostile.py; OpenBao in the other integration tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vaultkit.backends.vault import (
    MockTransport,
    Request,
    Response,
    VaultClient,
    VaultHTTPError,
    json_response,
    map_exception,
)
from vaultkit.config import VaultSettings
from vaultkit.errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    UnavailableError,
)

A, B = "http://vault-a:8200", "http://vault-b:8200"


def client(handler: Callable[[Request], Response], *addrs: str, **kw: Any
           ) -> tuple[VaultClient, MockTransport]:
    kw.setdefault("token", "tok-123")
    transport = MockTransport(handler)
    return VaultClient(VaultSettings(addr=addrs or (A,), **kw), transport=transport), transport


def test_reads_json_and_sends_vault_headers() -> None:
    vc, t = client(lambda r: json_response(200, {"data": {"k": "v"}}), namespace="team-a")
    assert vc.read("kv/data/my app", params={"version": "2"}) == {"data": {"k": "v"}}
    sent = t.requests[0]
    assert (sent.method, sent.url) == ("GET", f"{A}/v1/kv/data/my%20app?version=2")
    assert sent.headers["X-Vault-Token"] == "tok-123"
    assert sent.headers["X-Vault-Namespace"] == "team-a"
    assert sent.headers["X-Vault-Request"] == "true"


def test_post_sends_a_json_body_and_204_is_empty() -> None:
    vc, t = client(lambda r: Response(204))
    assert vc.write("transit/encrypt/k", {"plaintext": "eA=="}) == {}
    assert t.requests[0].method == "POST" and json.loads(t.requests[0].body or b"") == {
        "plaintext": "eA=="}
    assert t.requests[0].headers["Content-Type"] == "application/json"


def test_an_address_path_prefix_is_kept() -> None:
    vc, t = client(lambda r: json_response(), "https://proxy.example/vault/")
    vc.read("kv/x")
    assert t.requests[0].url == "https://proxy.example/vault/v1/kv/x"


def test_list_returns_key_names() -> None:
    vc, t = client(lambda r: json_response(200, {"data": {"keys": ["db", "tls/"]}}))
    assert vc.list("kv/metadata/app") == ["db", "tls/"]
    assert t.requests[0].url.endswith("/v1/kv/metadata/app?list=true")


@pytest.mark.parametrize("status, errors, expected", [
    (400, ["missing client token"], ConfigError),
    (400, ["Waiting for the primary to upgrade from non-versioned to versioned data"],
     UnavailableError),
    (401, [], AuthenticationError),
    (403, ["permission denied"], AccessDeniedError),
    (404, [], NotFoundError),
    (405, [], ConfigError),
    (412, [], UnavailableError),
    (429, [], UnavailableError),
    (500, ["boom"], UnavailableError),
    (502, [], UnavailableError),
    (503, ["sealed"], UnavailableError),
    (599, [], UnavailableError),
    (418, [], BackendError),
])
def test_status_mapping(status: int, errors: list[str], expected: type[Exception]) -> None:
    vc, _ = client(lambda r: json_response(status, {"errors": errors}))
    with pytest.raises(expected) as info:
        vc.read("kv/x")
    assert isinstance(info.value.__cause__, VaultHTTPError)
    assert getattr(info.value, "status", None) == status
    assert getattr(info.value, "reference", None) == "kv/x"
    for e in errors:
        assert e in str(info.value)


def test_501_is_not_retried() -> None:
    err = map_exception(VaultHTTPError(501, ["not initialized"]))
    assert isinstance(err, UnavailableError) and err.retryable is False


def test_fail_over_to_the_next_address_and_stay_there() -> None:
    def handler(r: Request) -> Response:
        if r.url.startswith(A):
            raise UnavailableError("refused", source="vault")
        return json_response(200, {"at": "b"})

    vc, t = client(handler, A, B)
    assert vc.read("kv/x") == {"at": "b"} and vc.address == B
    vc.read("kv/y")
    assert [r.url.split("/v1/")[0] for r in t.requests] == [A, B, B]


def test_sealed_everywhere_is_unavailable() -> None:
    vc, t = client(lambda r: json_response(503, {"errors": ["Vault is sealed"]}), A, B)
    with pytest.raises(UnavailableError, match="Vault is sealed"):
        vc.read("kv/x")
    assert len(t.requests) == 2


def test_a_deadline_does_not_fail_over() -> None:
    def handler(r: Request) -> Response:
        raise DeadlineExceededError("too slow", source="vault")

    vc, t = client(handler, A, B)
    with pytest.raises(DeadlineExceededError):
        vc.read("kv/x")
    assert len(t.requests) == 1


def test_a_standby_redirect_keeps_method_body_and_token() -> None:
    def handler(r: Request) -> Response:
        if r.url.startswith(A):
            return Response(307, {"location": f"{B}/v1/sys/leases/renew"})
        return json_response(200, {"ok": True})

    vc, t = client(handler)
    assert vc.write("sys/leases/renew", {"lease_id": "l1"}) == {"ok": True}
    second = t.requests[1]
    assert second.url == f"{B}/v1/sys/leases/renew" and second.method == "POST"
    assert json.loads(second.body or b"") == {"lease_id": "l1"}
    assert second.headers["X-Vault-Token"] == "tok-123"


@pytest.mark.parametrize("start, location, match", [
    ("https://vault-a:8200", "http://vault-b:8200/v1/kv/x", "cleartext"),
    (A, "ftp://vault-b/v1/kv/x", "not an http or https"),
    (A, "", "without a Location"),
])
def test_refused_redirects_send_nothing_further(start: str, location: str, match: str) -> None:
    vc, t = client(lambda r: Response(302, {"location": location} if location else {}), start)
    with pytest.raises(BackendError, match=match) as info:
        vc.read("kv/x")
    assert len(t.requests) == 1
    assert start in str(info.value)


def test_only_one_redirect_is_followed() -> None:
    vc, t = client(lambda r: Response(307, {"location": "/v1/kv/x"}))
    with pytest.raises(BackendError, match="only one redirect"):
        vc.read("kv/x")
    assert len(t.requests) == 2


def test_non_json_bodies_are_not_quoted() -> None:
    vc, _ = client(lambda r: Response(200, {}, b"<html>secret-looking-page</html>"))
    with pytest.raises(BackendError) as info:
        vc.read("kv/x")
    assert "secret-looking-page" not in str(info.value)


@pytest.mark.parametrize("token", ["tok\r\nX-Evil: 1", "tök", "a b", "\x00"])
def test_a_token_that_cannot_go_in_a_header(token: str) -> None:
    vc, t = client(lambda r: json_response(), token=token)
    with pytest.raises(ConfigError) as info:
        vc.read("kv/x")
    assert token not in str(info.value) and token not in repr(info.value)
    assert t.requests == []


def test_vault_error_text_is_cleaned_and_the_token_cut_out() -> None:
    echo = "denied \x1b[2J for tok-123\nline two" + "x" * 500
    vc, _ = client(lambda r: json_response(403, {"errors": [echo]}))
    with pytest.raises(AccessDeniedError) as info:
        vc.read("kv/x")
    msg = info.value.message
    assert "tok-123" not in msg and "\x1b" not in msg and "\n" not in msg and len(msg) < 300


def test_an_interim_status_as_final_answer_is_an_error() -> None:
    vc, _ = client(lambda r: Response(103, {}, b""))
    with pytest.raises(BackendError, match="interim"):
        vc.read("kv/x")


# --- read_many ----------------------------------------------------------------------------

def test_read_many_maps_mixed_statuses_per_request() -> None:
    codes = {"ok": 200, "gone": 404, "deny": 403, "sealed": 503, "bad": 400}

    def handler(r: Request) -> Response:
        name = r.url.rsplit("/", 1)[1].split("?")[0]
        status = codes[name]
        return json_response(status, {"data": {"p": r.url}} if status == 200
                             else {"errors": [f"{name} reason"]})

    vc, t = client(handler, namespace="team-a")
    out = vc.read_many(["kv/ok", "kv/gone", "kv/deny", "kv/sealed", "kv/bad"],
                       params=[{"version": "3"}, None, None, None, None],
                       references=["vault://kv/ok", None, None, None, None])
    assert out[0] == {"data": {"p": f"{A}/v1/kv/ok?version=3"}}
    assert [type(e) for e in out[1:]] == [NotFoundError, AccessDeniedError, UnavailableError,
                                          ConfigError]
    assert "deny reason" in str(out[2]) and out[3].status == 503  # type: ignore[union-attr]
    assert out[1].reference == "kv/gone"  # type: ignore[union-attr]
    assert all(r.headers["X-Vault-Namespace"] == "team-a" for r in t.requests)


def test_read_many_logs_in_again_once_for_an_expired_token(tmp_path: Any) -> None:
    secret = tmp_path / "sid"
    secret.write_text("sid")
    secret.chmod(0o600)
    logins = {"n": 0}

    def handler(r: Request) -> Response:
        if r.url.endswith("/auth/approle/login"):
            logins["n"] += 1
            return json_response(200, {"auth": {"client_token": f"t{logins['n']}"}})
        if r.headers.get("X-Vault-Token") == "t1":
            return json_response(403, {"errors": ["permission denied"]})
        return json_response(200, {"data": {"url": r.url}})

    vc, _ = client(handler, token=None, role_id="r", secret_id_file=str(secret))
    out = vc.read_many([f"kv/s{i}" for i in range(6)])
    assert all(isinstance(o, dict) for o in out) and logins["n"] == 2
    assert vc.auth_method == "approle"


def test_read_many_fails_over_per_read() -> None:
    def handler(r: Request) -> Response:
        if r.url.startswith(A):
            raise UnavailableError("refused", source="vault")
        return json_response(200, {"at": "b"})

    vc, _ = client(handler, A, B)
    assert vc.read_many([f"kv/s{i}" for i in range(5)]) == [{"at": "b"}] * 5
    assert vc.address == B


def test_mount_infos_cache_per_mount() -> None:
    def handler(r: Request) -> Response:
        return json_response(200, {"data": {"path": "kv/", "type": "kv",
                                            "options": {"version": "2"}}})

    vc, t = client(handler)
    infos = vc.mount_infos(["kv/a", "kv/b/c"])
    assert [i.kv_version for i in infos] == [2, 2]  # type: ignore[union-attr]
    assert vc.cached_mount("kv/z") is not None
    vc.mount_info("kv/q")
    assert len(t.requests) <= 2


def test_a_login_secret_echoed_by_the_server_is_cut_out(tmp_path: Any) -> None:
    secret = tmp_path / "sid"
    secret.write_text("s3cr3t-secret-id")
    secret.chmod(0o600)
    vc, _ = client(lambda r: json_response(400, {"errors": [
        "invalid secret id s3cr3t-secret-id for role"]}), token=None, role_id="r",
        secret_id_file=str(secret))
    with pytest.raises(ConfigError) as info:
        vc.login()
    assert "s3cr3t-secret-id" not in str(info.value) and "[redacted]" in str(info.value)
    assert info.value.reference == "auth/approle"


def test_a_login_is_sent_without_the_old_token(tmp_path: Any) -> None:
    secret = tmp_path / "sid"
    secret.write_text("sid")
    secret.chmod(0o600)
    vc, t = client(lambda r: json_response(200, {"auth": {"client_token": "new"}}),
                   token=None, role_id="r", secret_id_file=str(secret))
    vc.login()
    vc.login()
    assert all("X-Vault-Token" not in r.headers for r in t.requests)
    assert vc.token == "new" and vc.auth_reason and "role_id" in vc.auth_reason


@pytest.mark.parametrize("case", ["downgrade", "scheme", "second hop", "login"])
def test_a_refused_redirect_does_not_echo_the_token_or_secret_id_in_its_message(
        case: str) -> None:
    # The server received the token (or a login's secret id) and can put it in a Location's
    # host, which urlsplit also lower-cases: the message names the addresses without it.
    token, secret_id = "hvs.CAESIAbCdEfGhIjKlMnOp", "SeCrEt-1d-QrStUvWxYz0123"
    echoed = secret_id if case == "login" else token
    targets = {"downgrade": f"http://{echoed}.evil:8200/v1/x",
               "scheme": f"ftp://{echoed}.evil/x",
               "second hop": f"{B}/v1/x",
               "login": f"http://{echoed}.evil:8200/v1/x"}

    def handler(request: Request) -> Response:
        location = (f"http://{echoed}.evil/x" if request.url.startswith(B)
                    else targets[case])
        return Response(307, {"location": location})

    start = "http://vault-a:8200" if case in ("scheme", "second hop") else "https://vault-a:8200"
    if case == "login":
        vc, _ = client(handler, start, token=None, role_id="r")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("VAULT_APPROLE_SECRET_ID", secret_id)
            with pytest.raises(BackendError) as info:
                vc.login()
    else:
        vc, _ = client(handler, start, token=token)
        with pytest.raises(BackendError) as info:
            vc.read("kv/x")
    text = str(info.value).lower()
    assert "redirect" in text and "vault-a" in text
    assert echoed.lower() not in text
