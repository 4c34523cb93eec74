"""``vaultkit.integrations.pydantic`` with pydantic-settings against real OpenBao."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from harness.canary import LeakCanary
from harness.servers import OpenBao
from vaultkit.backends.vault import VaultClient
from vaultkit.config import Config
from vaultkit.errors import ConfigError, SecretsLoadError
from vaultkit.integrations.pydantic import Ref, VaultkitSettingsSource

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(openbao: OpenBao) -> str:
    return f"pyd-{uuid.uuid4().hex[:6]}"


def settings_class(config: Config, app: str, **source_kw: Any) -> type[BaseSettings]:
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_")
        db_password: Annotated[SecretStr, Ref(f"vault://secret/{app}/db#password")]
        db_user: Annotated[SecretStr, Ref(f"vault://secret/{app}/db#user")]
        api_key: SecretStr | None = None
        debug: bool = False

        @classmethod
        def settings_customise_sources(
                cls, settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            source = VaultkitSettingsSource(settings_cls, config=config, **source_kw)
            sources.append(source)
            return (init_settings, env_settings, source)

    sources: list[VaultkitSettingsSource] = []
    Settings.sources = sources  # type: ignore[attr-defined]
    return Settings


def test_fields_come_from_openbao_as_secretstr_in_one_planned_load(
        openbao: OpenBao, app: str, monkeypatch: pytest.MonkeyPatch,
        leak_canary: LeakCanary) -> None:
    root = VaultClient.from_config(openbao.config())
    pw, key = leak_canary.new(), leak_canary.new()
    root.write(f"secret/data/{app}/db", {"data": {"user": "svc", "password": pw}})
    root.write(f"secret/data/{app}/api", {"data": {"key": key}})
    monkeypatch.setenv("APP_DEBUG", "true")
    Settings = settings_class(openbao.config(), app,
                              spec={"APP_API_KEY": f"vault://secret/{app}/api#key"})
    settings: Any = Settings()
    assert isinstance(settings.db_password, SecretStr)
    assert settings.db_password.get_secret_value() == pw
    assert settings.db_user.get_secret_value() == "svc"
    assert settings.api_key.get_secret_value() == key
    assert settings.debug is True  # other sources still work
    loaded = Settings.sources[-1].loaded  # type: ignore[attr-defined]
    assert loaded is not None and len(loaded.plan.calls) == 1  # one batch for both reads
    # the environment outranks the vaultkit source (order = priority)
    monkeypatch.setenv("APP_DB_USER", "from-env")
    assert Settings().db_user.get_secret_value() == "from-env"  # type: ignore[attr-defined]
    leak_canary.watch(settings, Settings.sources[-1], loaded)  # type: ignore[attr-defined]


def test_failures_and_plain_fields(openbao: OpenBao, app: str,
                                   leak_canary: LeakCanary) -> None:
    root = VaultClient.from_config(openbao.config())
    root.write(f"secret/data/{app}/db", {"data": {"user": "svc", "password": leak_canary.new()}})
    config = openbao.config()

    def one_field(annotation: Any, reference: str) -> type[BaseSettings]:
        class One(BaseSettings):
            __annotations__ = {"value": Annotated[annotation, Ref(reference)]}

            @classmethod
            def settings_customise_sources(cls, settings_cls: Any, **rest: Any) -> Any:
                return (VaultkitSettingsSource(settings_cls, config=config),)
        return One

    with pytest.raises(SecretsLoadError) as info:
        one_field(SecretStr, f"vault://secret/{app}/nope#token")()
    assert "not_found" in str(info.value)
    with pytest.raises(ConfigError) as plain:
        one_field(str, f"vault://secret/{app}/db#password")()
    assert "not typed SecretStr" in str(plain.value)
    leak_canary.watch_exception(plain.value)
