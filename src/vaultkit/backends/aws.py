"""The one way vaultkit reaches AWS: a lazy boto3 session and a per-service client cache.

boto3 is imported only when the first client is asked for, so ``import
vaultkit`` stays cheap. Clients honour ``[aws]`` settings (region, profile,
``endpoint_url``) and the standard credential chain, which makes moto,
LocalStack and MinIO work by setting ``endpoint_url``. boto3 clients are
thread-safe, so one client per (service, settings) is shared by all threads.

:func:`aws_errors` converts botocore exceptions into vaultkit's hierarchy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..config import AwsSettings, Config
from ..errors import (
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
    converting,
)

if TYPE_CHECKING:
    import boto3

_lock = threading.Lock()
_sessions: dict[tuple[str | None, str | None], boto3.Session] = {}
_clients: dict[tuple[str, AwsSettings], Any] = {}


class _DropPayloads(logging.Filter):
    """Keep botocore's DEBUG logs free of request and response payloads.

    At DEBUG, ``botocore.parsers`` logs every response body and ``botocore.endpoint``
    logs every request's params. For GetSecretValue, GetParameters(WithDecryption),
    KMS GenerateDataKey/Decrypt (responses) and KMS Encrypt (request) those payloads
    *are* secrets. The operation name is kept; the payload is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith(("Response body", "Response headers")):
            return False
        if msg.startswith("Making request for") and isinstance(record.args, tuple) and record.args:
            record.msg = "Making request for %s (params not logged)"
            record.args = record.args[:1]
        return True


_PAYLOAD_FILTER = _DropPayloads()


def quiet_sdk_payload_logging() -> None:
    """Install :class:`_DropPayloads` on botocore's loggers (idempotent; done by :func:`session`)."""
    for name in ("botocore.parsers", "botocore.endpoint"):
        log = logging.getLogger(name)
        if _PAYLOAD_FILTER not in log.filters:
            log.addFilter(_PAYLOAD_FILTER)


def _settings(config: Config | AwsSettings | None) -> AwsSettings:
    if config is None:
        return Config.load().aws
    if isinstance(config, Config):
        return config.aws
    return config


def session(config: Config | AwsSettings | None = None) -> boto3.Session:
    """The shared boto3 session for these settings (profile and region)."""
    settings = _settings(config)
    key = (settings.profile, settings.region)
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            quiet_sdk_payload_logging()
            import boto3

            with aws_errors("aws"):
                sess = boto3.Session(profile_name=settings.profile, region_name=settings.region)
            _sessions[key] = sess
        return sess


def client(service: str, config: Config | AwsSettings | None = None) -> Any:
    """A cached boto3 client for ``service`` built from ``[aws]`` settings.

    >>> kms = client("kms", AwsSettings(endpoint_url="http://127.0.0.1:5000"))  # doctest: +SKIP
    """
    settings = _settings(config)
    key = (service, settings)
    cached = _clients.get(key)
    if cached is not None:
        return cached
    sess = session(settings)
    from botocore.config import Config as BotoConfig

    boto_config = BotoConfig(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=5,
        read_timeout=15,
        # botocore may pre-sign S3 URLs with SigV2 (no 7-day cap, HMAC-SHA1); SigV4 is what
        # every newer AWS region requires and what caps a link's life at 7 days.
        signature_version="s3v4" if service == "s3" else None,
    )
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            region = settings.region or sess.region_name or "us-east-1"
            with aws_errors("aws", reference=service):
                cached = sess.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=settings.endpoint_url,
                    config=boto_config,
                )
            _clients[key] = cached
        return cached


def reset_clients() -> None:
    """Forget cached sessions and clients (after a credential change, or in tests)."""
    with _lock:
        _sessions.clear()
        _clients.clear()


# --- error mapping -----------------------------------------------------------------

_NOT_FOUND = {
    "ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound", "NotFoundException",
    "NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404",
}
_DENIED = {
    "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "AuthorizationError",
    "KMSInvalidStateException", "DisabledException", "AllAccessDisabled", "403",
}
_AUTH = {
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId",
    "MissingAuthenticationToken", "IncompleteSignature", "RequestExpired",
}
_RETRYABLE = {
    "ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "SlowDown",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError",
    "InternalServiceError", "InternalServerError", "InternalServerErrorException",
    "KMSInternalException", "DependencyTimeoutException", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "EC2ThrottledException",
}
_INVALID = {
    "ValidationException", "InvalidParameterException", "InvalidParameterValue",
    "InvalidRequestException", "InvalidKeyUsageException", "NotFoundException.Alias",
    "MalformedPolicyDocumentException", "InvalidArnException", "InvalidBucketName",
}
_CRYPTO = {"InvalidCiphertextException", "IncorrectKeyException", "InvalidGrantTokenException"}


def map_client_error(
    code: str, status: int | None, message: str, *, source: str, reference: str | None
) -> VaultkitError:
    """The vaultkit error for an AWS error ``code`` and HTTP ``status``."""
    kw: dict[str, Any] = {"source": source, "reference": reference, "status": status or code}
    text = f"{code}: {message}" if message else code
    if code in _CRYPTO:
        return KeyProviderError(f"{code}: the ciphertext or its encryption context does not match",
                                **kw)
    if code in _NOT_FOUND:
        return NotFoundError(text, **kw)
    if code in _DENIED:
        return AccessDeniedError(text, **kw)
    if code in _AUTH:
        return AuthenticationError(text, **kw)
    if code in _RETRYABLE or (status is not None and (status >= 500 or status == 429)):
        return UnavailableError(text, **kw)
    if code in _INVALID:
        return ConfigError(text, **kw)
    if status == 404:
        return NotFoundError(text, **kw)
    if status == 403:
        return AccessDeniedError(text, **kw)
    return BackendError(text, **kw)


def map_exception(exc: BaseException, *, source: str, reference: str | None = None) -> (
    VaultkitError | None
):
    """The vaultkit error for a botocore/urllib3 exception, or ``None`` if it is not one."""
    import botocore.exceptions as bex

    kw: dict[str, Any] = {"source": source, "reference": reference}
    name = type(exc).__name__
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return map_client_error(
            str(err.get("Code", "Unknown")),
            meta.get("HTTPStatusCode"),
            # AWS messages name resources, never values; cap them all the same.
            str(err.get("Message", ""))[:200],
            source=source,
            reference=reference,
        )
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError,
                        bex.CredentialRetrievalError, bex.NoAuthTokenError,
                        bex.UnauthorizedSSOTokenError, bex.SSOTokenLoadError,
                        bex.TokenRetrievalError)):
        return AuthenticationError(f"AWS credentials unavailable ({name})", **kw)
    if isinstance(exc, bex.ProfileNotFound):
        return ConfigError(f"AWS profile not found ({name})", **kw)
    if isinstance(exc, bex.SSLError):
        return TLSError(f"TLS failure talking to AWS ({name})", **kw)
    if isinstance(exc, (bex.ConnectTimeoutError, bex.ReadTimeoutError)):
        return DeadlineExceededError(f"AWS endpoint timed out ({name})", **kw)
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError,
                        bex.ProxyConnectionError, bex.HTTPClientError)):
        return UnavailableError(f"AWS endpoint unreachable ({name})", **kw)
    if isinstance(exc, (bex.ParamValidationError, bex.UnknownServiceError,
                        bex.NoRegionError, bex.InvalidRegionError, bex.UnknownEndpointError,
                        bex.InvalidEndpointConfigurationError, bex.InvalidConfigError,
                        bex.DataNotFoundError, bex.UnknownSignatureVersionError,
                        bex.InvalidS3AddressingStyleError, bex.UnknownClientMethodError)):
        return ConfigError(f"invalid AWS request or configuration ({name})", **kw)
    if isinstance(exc, bex.WaiterError):
        return UnavailableError(f"AWS waiter gave up ({name})", **kw)
    if isinstance(exc, bex.BotoCoreError):
        return BackendError(f"AWS SDK error ({name})", **kw)
    return None


@contextlib.contextmanager
def aws_errors(source: str, *, reference: str | None = None) -> Iterator[None]:
    """Convert botocore exceptions raised in the block into vaultkit errors.

    >>> with aws_errors("awssm", reference="awssm://app"):  # doctest: +SKIP
    ...     sm.get_secret_value(SecretId="app")
    """
    with converting(map_exception, source, reference):
        yield


def pages(call: Callable[..., dict[str, Any]], kwargs: Mapping[str, Any], *, source: str,
          operation: str, reference: str, expired: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """Every page of a paged AWS call, following ``NextToken``.

    ``expired()`` is asked before each page: an endpoint (or proxy) that answers a
    ``NextToken`` on every page ends as :class:`DeadlineExceededError`, not a listing
    that runs forever. ``operation`` names the call in errors (``ListSecrets(app/*)``).
    """
    token: str | None = None
    done = 0
    while True:
        if expired():
            raise DeadlineExceededError(f"{operation} was still paging after {done} page(s) "
                                        "when the deadline passed", source=source,
                                        reference=reference)
        with aws_errors(source, reference=operation):
            resp = call(**kwargs, **({"NextToken": token} if token else {}))
        done += 1
        yield resp
        token = resp.get("NextToken")
        if not token:
            return


__all__ = [
    "aws_errors", "client", "map_client_error", "map_exception", "pages", "quiet_sdk_payload_logging",
    "reset_clients", "session",
]
