"""Secrets Manager, SSM and KMS through moto over HTTP, with the API calls counted."""

from __future__ import annotations

import base64
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from contracts.secret_source import Put, SecretSourceContract
from harness.aws_calls import CallCounter, quiet_setup
from harness.canary import LeakCanary
from harness.servers import Moto
from vaultkit.backends import aws
from vaultkit.errors import SecretsLoadError
from vaultkit.secrets import SecretSource, load_secrets, make_plan
from vaultkit.secrets.sources import default_sources
from vaultkit.secrets.sources.aws_sm import SecretsManagerSource
from vaultkit.secrets.sources.aws_ssm import ParameterStoreSource

pytestmark = pytest.mark.integration


def _uid() -> str:
    return uuid.uuid4().hex[:8]


class TestSecretsManager(SecretSourceContract):
    @pytest.fixture
    def source(self, moto_server: Moto) -> SecretSource:
        return SecretsManagerSource(config=moto_server.config())

    @pytest.fixture
    def put(self, moto_server: Moto) -> Put:
        sm = aws.client("secretsmanager", moto_server.config())
        prefix = _uid()

        def put(name: str, value: str) -> str:
            with quiet_setup():
                sm.create_secret(Name=f"contract/{prefix}/{name}", SecretString=value)
            return f"awssm://contract/{prefix}/{name}"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return f"awssm://contract/{_uid()}/missing"


class TestParameterStore(SecretSourceContract):
    @pytest.fixture
    def source(self, moto_server: Moto) -> SecretSource:
        return ParameterStoreSource(config=moto_server.config())

    @pytest.fixture
    def put(self, moto_server: Moto) -> Put:
        ssm = aws.client("ssm", moto_server.config())
        prefix = _uid()

        def put(name: str, value: str) -> str:
            with quiet_setup():
                ssm.put_parameter(Name=f"/contract/{prefix}/{name}", Value=value,
                                  Type="SecureString", Overwrite=True)
            return f"ssm:///contract/{prefix}/{name}"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return f"ssm:///contract/{_uid()}/missing"


@pytest.fixture
def sm_names(moto_server: Moto) -> Iterator[list[str]]:
    sm = aws.client("secretsmanager", moto_server.config())
    prefix = _uid()
    names = [f"count/{prefix}/s{i:02d}" for i in range(45)]
    for i, name in enumerate(names):
        sm.create_secret(Name=name, SecretString=f'{{"v": "value-{i}"}}')
    yield names


def test_secrets_manager_batches_20_per_call(moto_server: Moto, sm_names: list[str]) -> None:
    cfg = moto_server.config()
    counter = CallCounter(aws.client("secretsmanager", cfg))
    spec = {f"S{i:02d}": f"awssm://{n}#v" for i, n in enumerate(sm_names)}
    spec["DUP"] = f"awssm://{sm_names[0]}#v"  # a duplicate costs nothing
    loaded = load_secrets(spec, config=cfg)
    assert loaded.reveal("S07") == "value-7" and loaded.reveal("DUP") == "value-0"
    assert counter.calls == Counter({"BatchGetSecretValue": math.ceil(45 / 20)})
    assert make_plan(spec, default_sources(cfg)).counts() == {
        "awssm BatchGetSecretValue": 3}


def test_batch_access_denied_falls_back_to_single_reads(moto_server: Moto,
                                                        sm_names: list[str]) -> None:
    cfg = moto_server.config()
    client = aws.client("secretsmanager", cfg)

    def deny(model: Any, **kwargs: Any) -> Any:
        if model.name != "BatchGetSecretValue":
            return None
        from botocore.awsrequest import AWSResponse

        resp = AWSResponse("https://x", 400, {}, None)
        return resp, {"Error": {"Code": "AccessDeniedException",
                                "Message": "not allowed to batch"},
                      "ResponseMetadata": {"HTTPStatusCode": 400}}

    counter = CallCounter(client)  # registered first, so it sees the short-circuited call too
    client.meta.events.register_first("before-call", deny)
    spec = {f"S{i}": f"awssm://{n}#v" for i, n in enumerate(sm_names[:5])}
    loaded = load_secrets(spec, config=cfg)
    assert loaded.reveal("S3") == "value-3"
    assert counter.calls == Counter({"BatchGetSecretValue": 1, "GetSecretValue": 5})


def test_stage_and_version_use_single_reads(moto_server: Moto) -> None:
    cfg = moto_server.config()
    sm = aws.client("secretsmanager", cfg)
    name = f"staged/{_uid()}"
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    sm.put_secret_value(SecretId=name, SecretString="two")
    counter = CallCounter(sm)
    loaded = load_secrets({"CUR": f"awssm://{name}",
                           "PREV": f"awssm://{name}?stage=AWSPREVIOUS",
                           "V1": f"awssm://{name}?version={first}"}, config=cfg)
    assert loaded.as_env() == {"CUR": "two", "PREV": "one", "V1": "one"}
    assert counter.calls == Counter({"BatchGetSecretValue": 1, "GetSecretValue": 2})


def test_ssm_batches_10_per_call_and_decrypts(moto_server: Moto,
                                              leak_canary: LeakCanary) -> None:
    cfg = moto_server.config()
    ssm = aws.client("ssm", cfg)
    prefix = _uid()
    values = {}
    for i in range(23):
        values[f"P{i:02d}"] = leak_canary.new(f"p{i}")
        with quiet_setup():
            ssm.put_parameter(Name=f"/count/{prefix}/p{i}", Value=values[f"P{i:02d}"],
                              Type="SecureString" if i % 2 else "String")
    counter = CallCounter(ssm)
    spec = {f"P{i:02d}": f"ssm:///count/{prefix}/p{i}" for i in range(23)}
    loaded = load_secrets(spec, config=cfg)
    assert loaded.as_env() == values
    assert counter.calls == Counter({"GetParameters": math.ceil(23 / 10)})


def test_ssm_versions(moto_server: Moto) -> None:
    cfg = moto_server.config()
    ssm = aws.client("ssm", cfg)
    name = f"/ver/{_uid()}"
    ssm.put_parameter(Name=name, Value="one", Type="SecureString")
    ssm.put_parameter(Name=name, Value="two", Type="SecureString", Overwrite=True)
    loaded = load_secrets({"CUR": f"ssm://{name}", "V1": f"ssm://{name}?version=1"}, config=cfg)
    assert loaded.as_env() == {"CUR": "two", "V1": "one"}


def test_kms_ciphertext_references(moto_server: Moto, leak_canary: LeakCanary) -> None:
    cfg = moto_server.config()
    kms = aws.client("kms", cfg)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    value = leak_canary.new()
    with quiet_setup():
        blob = kms.encrypt(KeyId=key_id, Plaintext=value.encode(),
                           EncryptionContext={"app": "web"})["CiphertextBlob"]
    b64 = base64.b64encode(blob).decode()
    loaded = load_secrets({"OK": f"kms:{b64}?ctx.app=web",
                           "PINNED": f"kms:{b64}?ctx.app=web&key={key_id}"}, config=cfg)
    assert loaded.reveal("OK") == value and loaded.reveal("PINNED") == value
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"WRONGCTX": f"kms:{b64}?ctx.app=other",
                      "GARBAGE": "kms:" + base64.b64encode(b"x" * 40).decode()}, config=cfg)
    f = info.value.failures
    assert f["WRONGCTX"].category == "crypto"
    assert f["GARBAGE"].category in ("crypto", "invalid")
    assert b64 not in str(info.value)  # the ciphertext is shortened in messages
    leak_canary.watch_exception(info.value)


def test_endpoint_down_fails_within_deadline(moto_server: Moto) -> None:
    import time

    from harness.servers import free_port
    from vaultkit.config import AwsSettings, Config

    cfg = Config(aws=AwsSettings(region="us-east-1",
                                 endpoint_url=f"http://127.0.0.1:{free_port()}"))
    t0 = time.monotonic()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"A": "awssm://x", "B": "ssm:///y"}, config=cfg, deadline=3)
    assert time.monotonic() - t0 < 4.5
    assert {e.category for e in info.value.failures.values()} <= {"unavailable", "timeout"}


class TestKms(SecretSourceContract):
    """``kms:`` passes the shared contract: the reference *is* the ciphertext, and "missing"
    is a blob pinned (``?key=``) to a key that does not exist, which KMS answers NotFound."""

    @pytest.fixture
    def source(self, moto_server: Moto) -> SecretSource:
        from vaultkit.secrets.sources.kms import KmsSource

        return KmsSource(config=moto_server.config())

    @pytest.fixture
    def kms_key(self, moto_server: Moto) -> str:
        return str(aws.client("kms", moto_server.config()).create_key()["KeyMetadata"]["KeyId"])

    @pytest.fixture
    def put(self, moto_server: Moto, kms_key: str) -> Put:
        kms = aws.client("kms", moto_server.config())

        def put(name: str, value: str) -> str:
            with quiet_setup():
                blob = kms.encrypt(KeyId=kms_key, Plaintext=value.encode(),
                                   EncryptionContext={"name": name})["CiphertextBlob"]
            return f"kms:{base64.b64encode(blob).decode()}?ctx.name={name}"
        return put

    @pytest.fixture
    def missing(self, put: Put) -> str:
        return put("gone", "x") + f"&key={uuid.uuid4()}"
