"""A pydantic-settings source: ``BaseSettings`` fields from vaultkit references.

Install with ``pip install 'vaultkit[pydantic]'``. Fields declare where their
value lives with :class:`Ref` (or the source gets a ``spec`` mapping, wildcards
included); every reference of the class is resolved in **one** planned
:func:`~vaultkit.secrets.load_secrets` call (batched, parallel, one deadline,
one aggregated error)::

    from typing import Annotated
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings
    from vaultkit.integrations.pydantic import Ref, VaultkitSettingsSource

    class Settings(BaseSettings):
        db_password: Annotated[SecretStr, Ref("vault://secret/app/db#password")]
        api_key: Annotated[SecretStr, Ref("awssm://prod/api#key")]
        debug: bool = False

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                       dotenv_settings, file_secret_settings):
            return (init_settings, env_settings, VaultkitSettingsSource(settings_cls))

The shape is pydantic-settings' own ``AWSSecretsManagerSettingsSource``: a
subclass of ``EnvSettingsSource`` whose ``_load_env_vars`` does the fetch, so
prefixes, aliases, case rules and nested delimiters behave as for environment
variables. As there, the fetch runs when the source is built, i.e. on every
``Settings()``.

Values reach pydantic only for fields typed ``SecretStr``/``SecretBytes``
(optionally ``| None``): a secret in a plain ``str`` field would show in
``repr(settings)`` and in validation errors, so such a field is a
:class:`ConfigError` unless ``allow_plain=True``. ``PYDANTIC_SETTINGS_DEBUG=1``
logs every source's values, secrets included: do not set it in production.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretBytes, SecretStr
from pydantic_settings import EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from ..config import Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo
    from pydantic_settings import BaseSettings

    from ..secrets import LoadedSecrets, SecretSource


class Ref:
    """Marks a field's reference: ``Annotated[SecretStr, Ref("vault://kv/app#pw")]``."""

    __slots__ = ("reference",)

    def __init__(self, reference: str) -> None:
        self.reference = reference

    def __repr__(self) -> str:
        return f"Ref({self.reference!r})"  # a reference is not a secret


def _is_secret_type(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_secret_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_secret_type(a) for a in args)
    return False


class VaultkitSettingsSource(EnvSettingsSource):
    """Fields of ``settings_cls`` from vaultkit references, in one ``load_secrets`` call.

    ``spec`` adds ``NAME = reference`` entries matched to fields like environment
    variables (wildcards such as ``vault://secret/app/*`` too). ``config``,
    ``deadline`` and ``sources`` go to :func:`load_secrets`.
    """

    def __init__(self, settings_cls: type[BaseSettings], spec: Mapping[str, str] | None = None,
                 *, config: Config | None = None, deadline: float = 10.0,
                 sources: Iterable[SecretSource] = (), allow_plain: bool = False,
                 case_sensitive: bool | None = None, env_prefix: str | None = None,
                 env_nested_delimiter: str | None = None,
                 env_parse_none_str: str | None = None,
                 env_parse_enums: bool | None = None) -> None:
        self._spec = dict(spec or {})
        self._config = config
        self._deadline = deadline
        self._sources = list(sources)
        self._allow_plain = allow_plain
        #: the :class:`LoadedSecrets` of the last load (its plan, leases; values redacted)
        self.loaded: LoadedSecrets | None = None
        super().__init__(settings_cls, case_sensitive=case_sensitive, env_prefix=env_prefix,
                         env_nested_delimiter=env_nested_delimiter, env_ignore_empty=False,
                         env_parse_none_str=env_parse_none_str, env_parse_enums=env_parse_enums)

    def _fields_by_env_name(self) -> dict[str, tuple[str, FieldInfo]]:
        out: dict[str, tuple[str, FieldInfo]] = {}
        for name, field in self.settings_cls.model_fields.items():
            for _, env_name, _ in self._extract_field_info(field, name):
                out[env_name if self.case_sensitive else env_name.lower()] = (name, field)
        return out

    def _load_env_vars(self) -> Mapping[str, str | None]:
        from ..secrets import load_secrets

        fields = self._fields_by_env_name()
        spec = dict(self._spec)
        for env_name, (_, field) in fields.items():
            ref = next((m for m in field.metadata if isinstance(m, Ref)), None)
            if ref is not None:
                spec[env_name] = ref.reference
        if not spec:
            return {}
        self.loaded = load_secrets(spec, config=self._config, deadline=self._deadline,
                                   sources=self._sources)
        values = self.loaded.as_env()
        for name in values:
            hit = fields.get(name if self.case_sensitive else name.lower())
            if hit is not None and not self._allow_plain and not _is_secret_type(
                    hit[1].annotation):
                raise ConfigError(f"field {hit[0]!r} gets a secret but is not typed SecretStr "
                                  "or SecretBytes (pass allow_plain=True to allow it)",
                                  reference=self.loaded.plan.refs[name].display)
        return parse_env_vars(values, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self._spec)} + Ref fields)"


__all__ = ["Ref", "VaultkitSettingsSource"]
