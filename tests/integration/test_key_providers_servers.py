"""Key-provider contract against real servers: moto's KMS over HTTP and OpenBao transit."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.key_provider import KeyProviderContract
from harness.servers import Moto, OpenBao
from vaultkit.backends import aws
from vaultkit.keys import KeyProvider, get_key_provider
from vaultkit.keys.vault_transit import TransitKeyProvider

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kms_keys(moto_server: Moto) -> tuple[str, str]:
    kms = aws.client("kms", moto_server.config())
    a = kms.create_key(Description="vaultkit-contract-a")["KeyMetadata"]["KeyId"]
    b = kms.create_key(Description="vaultkit-contract-b")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/vaultkit-contract", TargetKeyId=a)
    return a, b


class TestAwsKmsProvider(KeyProviderContract):
    @pytest.fixture
    def provider(self, moto_server: Moto, kms_keys: tuple[str, str]) -> KeyProvider:
        return get_key_provider(f"awskms://{kms_keys[0]}", config=moto_server.config())

    @pytest.fixture
    def other_provider(self, moto_server: Moto, kms_keys: tuple[str, str]) -> KeyProvider:
        return get_key_provider(f"awskms://{kms_keys[1]}", config=moto_server.config())

    def test_alias_uri(self, moto_server: Moto, kms_keys: tuple[str, str]) -> None:
        provider = get_key_provider("awskms://alias/vaultkit-contract",
                                    config=moto_server.config())
        dk = provider.generate_data_key(context={"a": "b"})
        by_id = get_key_provider(f"awskms://{kms_keys[0]}", config=moto_server.config())
        assert by_id.decrypt_data_key(dk.wrapped, context={"a": "b"}) == dk.plaintext

    def test_calls_go_over_http_to_moto(self, moto_server: Moto, kms_keys: tuple[str, str]
                                        ) -> None:
        kms = aws.client("kms", moto_server.config())
        assert kms.meta.endpoint_url == moto_server.endpoint_url


@pytest.fixture(scope="module")
def transit(openbao: OpenBao) -> OpenBao:
    openbao.bao("secrets", "enable", "-path=transit-contract", "transit", check=False)
    openbao.bao("write", "-f", "transit-contract/keys/a")
    openbao.bao("write", "-f", "transit-contract/keys/b")
    return openbao


class TestTransitProvider(KeyProviderContract):
    @pytest.fixture
    def provider(self, transit: OpenBao) -> KeyProvider:
        return get_key_provider("transit://transit-contract/a", config=transit.config())

    @pytest.fixture
    def other_provider(self, transit: OpenBao) -> Any:
        return TransitKeyProvider("transit-contract", "b", config=transit.config())

    def test_survives_transit_key_rotation(self, transit: OpenBao) -> None:
        provider = get_key_provider("transit://transit-contract/a", config=transit.config())
        dk = provider.generate_data_key(context={"x": "y"})
        transit.bao("write", "-f", "transit-contract/keys/a/rotate")
        assert provider.decrypt_data_key(dk.wrapped, context={"x": "y"}) == dk.plaintext


def test_kms_provider_leaks_no_key_bytes_into_debug_logs(moto_server: Moto, kms_keys: tuple[str, str],
                                                        leak_canary) -> None:
    """botocore logs request params and response bodies at DEBUG; both carry key bytes."""
    import base64

    provider = get_key_provider(f"awskms://{kms_keys[0]}", config=moto_server.config())
    planted = leak_canary.new_bytes()  # sent as KMS Encrypt's Plaintext
    wrapped = provider.encrypt_data_key(planted, context={"t": "1"})
    assert provider.decrypt_data_key(wrapped, context={"t": "1"}).reveal() == planted
    dk = provider.generate_data_key(context={"t": "2"})  # Plaintext comes back in the body
    leak_canary.add(base64.b64encode(dk.plaintext.reveal()).decode())
    leak_canary.watch(dk, provider)
