"""Every botocore and urllib3 exception class maps into vaultkit's hierarchy.

The classes are enumerated from the installed SDKs, so a new SDK release that
adds an exception class shows up here rather than escaping to a caller.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import botocore.exceptions as bex
import pytest
import urllib3.exceptions as ux

from vaultkit.backends import aws, vault
from vaultkit.errors import (
    AccessDeniedError,
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceededError,
    KeyProviderError,
    NotFoundError,
    TLSError,
    UnavailableError,
    VaultkitError,
)


def _classes(module: ModuleType, base: type[BaseException]) -> list[type[BaseException]]:
    return sorted(
        (c for _, c in inspect.getmembers(module, inspect.isclass)
         if issubclass(c, base) and not issubclass(c, Warning)),
        key=lambda c: c.__name__,
    )


def _instance(cls: type[BaseException]) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, "boom")
    if issubclass(cls, bex.ClientError):
        exc.response = {"Error": {"Code": "Whatever", "Message": "m"},  # type: ignore[attr-defined]
                        "ResponseMetadata": {"HTTPStatusCode": 400}}
    return exc


BOTO = _classes(bex, Exception)
BOTO = [c for c in BOTO if issubclass(c, (bex.BotoCoreError, bex.ClientError))]
URLLIB3 = _classes(ux, ux.HTTPError)


@pytest.mark.parametrize("cls", BOTO, ids=lambda c: c.__name__)
def test_every_botocore_exception_is_mapped(cls: type[BaseException]) -> None:
    mapped = aws.map_exception(_instance(cls), source="aws", reference="ref")
    assert isinstance(mapped, VaultkitError)
    assert mapped.source == "aws" and mapped.reference == "ref"


@pytest.mark.parametrize("cls", URLLIB3, ids=lambda c: c.__name__)
def test_every_urllib3_exception_is_mapped(cls: type[BaseException]) -> None:
    mapped = vault.map_exception(_instance(cls), source="vault", reference="ref")
    assert isinstance(mapped, VaultkitError)
    assert mapped.source == "vault" and mapped.reference == "ref"


def test_the_enumeration_found_the_sdks_classes() -> None:
    assert len(BOTO) > 50 and len(URLLIB3) >= 20


def socket_error() -> OSError:
    import socket

    return socket.gaierror(-2, "Name or service not known")


@pytest.mark.parametrize("exc, expected", [
    (ux.NewConnectionError(None, "refused"), UnavailableError),  # a ConnectTimeoutError subclass
    (ux.NameResolutionError("vault.invalid", None, socket_error()), UnavailableError),
    (ux.ConnectTimeoutError(None, "timed out"), DeadlineExceededError),
    (ux.ReadTimeoutError(None, "/v1/x", "timed out"), DeadlineExceededError),
    (ux.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
     UnavailableError),
    (ux.SSLError("certificate verify failed"), TLSError),
    (ux.ProxyError("refused", OSError("x")), UnavailableError),
    (ux.LocationParseError("http://[x"), ConfigError),
])
def test_vault_categories(exc: BaseException, expected: type[VaultkitError]) -> None:
    assert type(vault.map_exception(exc)) is expected


@pytest.mark.parametrize("code, status, expected, retryable", [
    ("ResourceNotFoundException", 400, NotFoundError, False),
    ("ParameterNotFound", 400, NotFoundError, False),
    ("AccessDeniedException", 400, AccessDeniedError, False),
    ("UnrecognizedClientException", 400, AuthenticationError, False),
    ("ThrottlingException", 400, UnavailableError, True),
    ("InternalServiceError", 500, UnavailableError, True),
    ("SomethingNew", 503, UnavailableError, True),
    ("InvalidCiphertextException", 400, KeyProviderError, False),
    ("ValidationException", 400, ConfigError, False),
    ("SomethingNew", 400, BackendError, False),
])
def test_aws_error_codes(code: str, status: int, expected: type[VaultkitError], retryable: bool
                         ) -> None:
    exc: Any = bex.ClientError({"Error": {"Code": code, "Message": "m"},
                                "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
    mapped = aws.map_exception(exc, source="awssm", reference="awssm://x")
    assert type(mapped) is expected
    assert mapped is not None and mapped.retryable is retryable


@pytest.mark.parametrize("exc, expected", [
    (bex.NoCredentialsError(), AuthenticationError),
    (bex.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), UnavailableError),
    (bex.ConnectTimeoutError(endpoint_url="http://x"), DeadlineExceededError),
    (bex.ReadTimeoutError(endpoint_url="http://x"), DeadlineExceededError),
    (bex.ParamValidationError(report="bad"), ConfigError),
    (bex.NoRegionError(), ConfigError),
])
def test_aws_transport_errors(exc: BaseException, expected: type[VaultkitError]) -> None:
    assert type(aws.map_exception(exc, source="aws")) is expected


def test_context_manager_chains_the_cause() -> None:
    with pytest.raises(UnavailableError) as info:
        with aws.aws_errors("aws", reference="r"):
            raise bex.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert isinstance(info.value.__cause__, bex.EndpointConnectionError)
    assert info.value.reference == "r"


def test_unrelated_exceptions_pass_through() -> None:
    with pytest.raises(ZeroDivisionError):
        with aws.aws_errors("aws"):
            raise ZeroDivisionError
    assert vault.map_exception(KeyError("x")) is None


# What urllib3's connections (sockets + ssl) raise underneath; each must map too.
def _transport_exceptions() -> list[BaseException]:
    import socket
    import ssl

    return [vault.VaultHTTPError(404, []), vault.VaultHTTPError(503, ["sealed"]),
            vault.VaultProtocolError("bad status line"), ConnectionRefusedError(111, "refused"),
            ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe"),
            socket.gaierror(-2, "Name or service not known"), TimeoutError("timed out"),
            ssl.SSLError(1, "handshake"), ssl.SSLCertVerificationError(1, "verify failed"),
            ssl.SSLEOFError(8, "eof"), OSError(113, "No route to host")]


@pytest.mark.parametrize("exc", _transport_exceptions(), ids=lambda e: type(e).__name__)
def test_every_transport_exception_is_mapped(exc: BaseException) -> None:
    mapped = vault.map_exception(exc, source="vault", reference="ref")
    assert isinstance(mapped, VaultkitError)
    assert mapped.source == "vault" and mapped.reference == "ref"


@pytest.mark.parametrize("exc, expected", [
    (vault.VaultProtocolError("x"), vault.VaultProtocolError),
    (ConnectionRefusedError(111, "refused"), UnavailableError),
    (TimeoutError("timed out"), DeadlineExceededError),
    (vault.VaultHTTPError(403, ["permission denied"]), AccessDeniedError),
    (vault.VaultHTTPError(404, []), NotFoundError),
])
def test_transport_categories(exc: BaseException, expected: type[VaultkitError]) -> None:
    assert type(vault.map_exception(exc)) is expected


def test_tls_failures_are_tls_errors_naming_the_setting_that_fixes_them() -> None:
    import ssl

    err = vault.map_exception(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert type(err) is TLSError and "VAULT_CACERT" in str(err)
    err = vault.map_exception(ux.SSLError(ssl.SSLCertVerificationError(
        1, "Hostname mismatch, certificate is not valid for 'x'")))
    assert type(err) is TLSError and "TLS_SERVER_NAME" in str(err)
    err = vault.map_exception(ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"
                                              " tlsv13 alert certificate required"))
    assert type(err) is TLSError and "CLIENT_CERT" in str(err)


def test_local_file_errors_are_not_called_network_errors() -> None:
    assert vault.map_exception(FileNotFoundError(2, "no such file")) is None
    assert vault.map_exception(PermissionError(13, "denied")) is None
