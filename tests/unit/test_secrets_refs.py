"""The reference syntax: every scheme, its options, and clear errors for malformed ones."""

from __future__ import annotations

import pytest

from vaultkit.errors import ConfigError, InvalidReferenceError
from vaultkit.secrets import is_reference, parse_reference


@pytest.mark.parametrize(("ref", "scheme", "locator", "key"), [
    ("vault://kv/app/db#password", "vault", "kv/app/db", "password"),
    ("vault://secret/nested/deep/path", "vault", "secret/nested/deep/path", None),
    ("vault+dyn://database/creds/app#username", "vault+dyn", "database/creds/app", "username"),
    ("awssm://prod/db#password", "awssm", "prod/db", "password"),
    ("awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf#pw", "awssm",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "pw"),
    ("ssm:///prod/db/password", "ssm", "/prod/db/password", None),
    ("ssm://plain-name", "ssm", "plain-name", None),
    ("keyring://svc/user", "keyring", "svc/user", None),
    ("env://DATABASE_URL", "env", "DATABASE_URL", None),
    ("file:///etc/app/secrets.json#db/password", "file", "/etc/app/secrets.json", "db/password"),
    ("file://secrets.enc.toml#token", "file", "secrets.enc.toml", "token"),
    ("memory://x#k", "memory", "x", "k"),
    ("kms:AQICAHh+/abc==", "kms", "AQICAHh+/abc==", None),
])
def test_schemes(ref: str, scheme: str, locator: str, key: str | None) -> None:
    parsed = parse_reference(ref)
    assert (parsed.scheme, parsed.locator, parsed.key) == (scheme, locator, key)
    assert is_reference(ref)


def test_options() -> None:
    r = parse_reference("vault://kv/app?version=3&kv=2#pw")
    assert r.version == "3" and r.option("kv") == "2"
    r = parse_reference("awssm://app?stage=AWSPREVIOUS#k")
    assert r.stage == "AWSPREVIOUS"
    r = parse_reference("ssm:///a/b?version=4")
    assert r.version == "4"
    r = parse_reference("kms:AQID?ctx.app=web&ctx.env=prod&key=alias/app")
    assert dict(r.context) == {"app": "web", "env": "prod"}
    assert r.option("key") == "alias/app"
    r = parse_reference("env://X?optional=1")
    assert r.optional and r.default is None
    r = parse_reference("env://X?default=hello")
    assert r.optional and r.default == "hello"


def test_fragment_does_not_change_the_unit() -> None:
    a = parse_reference("vault://kv/app#user")
    b = parse_reference("vault://kv/app#password")
    c = parse_reference("vault://kv/app?version=2#user")
    assert a.unit == b.unit != c.unit


def test_display_hides_default_and_shortens_kms() -> None:
    r = parse_reference("env://X?default=fallback-value")
    assert "fallback-value" not in r.display and "fallback-value" not in repr(r)
    blob = "A" * 200
    k = parse_reference(f"kms:{blob}?ctx.a=b")
    assert blob not in k.display and "200 chars" in k.display


@pytest.mark.parametrize("ref", [
    "", "   ", "no-scheme", "nope://x", "vault://onlymount", "vault://kv/app?version=x",
    "vault://kv/app?bogus=1", "vault://kv/app?kv=3", "awssm://", "awssm://a?stage=S&version=V",
    "ssm://", "kms:", "kms:not*base64", "keyring://service-only", "env://1BAD", "env://",
    "file://", "env://X?optional=maybe", "env://X?ctx.a=b", "vault://kv/app#",
    "env://X?encoding=rot13", "vault://kv/a?version=1&version=2",
])
def test_malformed_references_raise_a_config_error_naming_them(ref: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(ref)
    assert isinstance(info.value, ConfigError)
    assert info.value.category == "invalid"
    if ref.strip():
        assert info.value.reference


def test_non_string_reference() -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference(None)  # type: ignore[arg-type]


def test_is_reference() -> None:
    assert not is_reference("hello")
    assert not is_reference("https://example.com")
    assert is_reference("kms:AQID")
