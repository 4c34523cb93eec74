"""The SecretSource contract for the sources that need no server: memory, env, file, keyring."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path

import keyring
import pytest

from contracts.secret_source import Put, SecretSourceContract
from harness.keyring_backend import MemoryKeyring
from vaultkit.errors import InvalidReferenceError, NotFoundError, SecretsLoadError
from vaultkit.keys.memory import MemoryKeyProvider
from vaultkit.secret import Secret
from vaultkit.secrets import (
    Deadline,
    Fetched,
    MemorySource,
    Reference,
    SecretSource,
    load_secrets,
    parse_reference,
)
from vaultkit.secrets.envfile import encrypt_document, read_document, write_document
from vaultkit.secrets.sources.base import BaseSource
from vaultkit.secrets.sources.encrypted_file import EncryptedFileSource
from vaultkit.secrets.sources.env import EnvSource
from vaultkit.secrets.sources.keyring import KeyringSource

_ids = itertools.count()


class TestMemorySource(SecretSourceContract):
    @pytest.fixture
    def source(self) -> MemorySource:
        return MemorySource()

    @pytest.fixture
    def put(self, source: MemorySource) -> Put:
        def put(name: str, value: str) -> str:
            source.put(name, value)
            return f"memory://{name}"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return "memory://does-not-exist"


class TestEnvSource(SecretSourceContract):
    @pytest.fixture
    def environ(self) -> dict[str, str]:
        return {}

    @pytest.fixture
    def source(self, environ: dict[str, str]) -> SecretSource:
        return EnvSource(environ)

    @pytest.fixture
    def put(self, environ: dict[str, str]) -> Put:
        def put(name: str, value: str) -> str:
            var = "VK_" + name.upper().replace("-", "_")
            environ[var] = value
            return f"env://{var}"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return "env://VK_NOT_SET_ANYWHERE"


class TestEncryptedFileSource(SecretSourceContract):
    @pytest.fixture
    def source(self) -> SecretSource:
        return EncryptedFileSource()

    @pytest.fixture
    def put(self, tmp_path: Path) -> Put:
        kek = MemoryKeyProvider.named("contract-file")
        path = tmp_path / "secrets.enc.json"

        def put(name: str, value: str) -> str:
            try:
                plain = json.loads(value)
            except ValueError:
                plain = value
            doc: dict[str, object] = {}
            if path.exists():
                from vaultkit.secrets.envfile import decrypt_document

                doc = decrypt_document(read_document(path))
            doc[name] = plain
            write_document(path, encrypt_document(doc, kek))
            # Structured values are nested tables: the contract selects inside with name/key.
            return f"file://{path}#{name}"
        return put

    @pytest.fixture
    def missing(self, tmp_path: Path) -> str:
        return f"file://{tmp_path}/no-such-file.json#k"


class TestKeyringSource(SecretSourceContract):
    @pytest.fixture
    def source(self, memory_keyring: MemoryKeyring) -> SecretSource:
        return KeyringSource()

    @pytest.fixture
    def put(self, memory_keyring: MemoryKeyring) -> Put:
        def put(name: str, value: str) -> str:
            keyring.set_password("vaultkit-test", name, value)
            return f"keyring://vaultkit-test/{name}"
        return put

    @pytest.fixture
    def missing(self, memory_keyring: MemoryKeyring) -> str:
        return "keyring://vaultkit-test/nobody"


# --- a source with a scheme vaultkit does not know: "Writing a source" in docs/secrets.md --


class TeamVault(BaseSource):
    """A third-party source: its own scheme, its own option and its own locator rule."""

    schemes = ("teamvault",)
    options = frozenset({"region"})

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.regions: list[str | None] = []

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        if not locator.startswith("team-"):
            raise InvalidReferenceError("teamvault:// names start with team-")
        return locator

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        self.regions.append(unit.option("region"))
        if unit.locator not in self.data:
            raise NotFoundError("no such entry", source="teamvault", reference=unit.display)
        return Fetched(Secret(self.data[unit.locator]))


class TestPluggedInSource(SecretSourceContract):
    @pytest.fixture
    def source(self) -> TeamVault:
        return TeamVault()

    @pytest.fixture
    def put(self, source: TeamVault) -> Put:
        def put(name: str, value: str) -> str:
            source.data[f"team-{name}"] = value
            return f"teamvault://team-{name}"
        return put

    @pytest.fixture
    def missing(self) -> str:
        return "teamvault://team-nobody"


def test_a_new_scheme_validates_its_own_references() -> None:
    source = TeamVault()
    source.data["team-db"] = '{"password": "pw"}'
    loaded = load_secrets({"PW": "teamvault://team-db?region=eu#password"}, sources=[source])
    assert loaded.reveal("PW") == "pw" and source.regions == ["eu"]
    for bad, why in (("teamvault://db", "names start with team-"),
                     ("teamvault://team-db?zone=x", "unknown option 'zone'"),
                     ("teamvault://team-db/*", "cannot use wildcards")):
        with pytest.raises(SecretsLoadError) as info:
            load_secrets({"X": bad}, sources=[source])
        assert why in str(info.value)
    # without the source the scheme is unknown, and the message lists the ones there are
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"X": "teamvault://team-db"})
    assert "unknown reference scheme 'teamvault'" in str(info.value)
    assert parse_reference("teamvault://team-db", {"teamvault": source}).locator == "team-db"


@pytest.mark.parametrize("ref", ["ssm:///prod/app/*", "awssm://prod/app/*"])
def test_a_listing_that_never_ends_stops_at_the_deadline(ref: str) -> None:
    # A NextToken on every page (a broken endpoint or proxy): the listing is bounded by the
    # boot's deadline, not run forever.
    import time as _time

    from vaultkit.errors import DeadlineExceededError
    from vaultkit.secrets.refs import parse_reference
    from vaultkit.secrets.retry import Deadline
    from vaultkit.secrets.sources.aws_sm import SecretsManagerSource
    from vaultkit.secrets.sources.aws_ssm import ParameterStoreSource

    class Endless:
        def get_parameters_by_path(self, **kw: object) -> dict[str, object]:
            _time.sleep(0.01)
            return {"Parameters": [], "NextToken": "again"}

        def list_secrets(self, **kw: object) -> dict[str, object]:
            _time.sleep(0.01)
            return {"SecretList": [], "NextToken": "again"}

    class SSM(ParameterStoreSource):
        client = Endless()  # type: ignore[assignment]

    class SM(SecretsManagerSource):
        client = Endless()  # type: ignore[assignment]

    source = SSM() if ref.startswith("ssm") else SM()
    started = _time.monotonic()
    with pytest.raises(DeadlineExceededError):
        source.expand(parse_reference(ref), Deadline(0.3))
    assert _time.monotonic() - started < 2


def test_a_vault_folder_tree_that_never_ends_stops_at_the_deadline() -> None:
    # vault://.../** against a server listing one more folder at every level: each LIST
    # is quick, so only the boot's deadline can end the walk.
    import time as _time

    from vaultkit.backends.vault import MockTransport, Request, Response, VaultClient, json_response
    from vaultkit.config import VaultSettings
    from vaultkit.errors import DeadlineExceededError
    from vaultkit.secrets.refs import parse_reference
    from vaultkit.secrets.retry import Deadline
    from vaultkit.secrets.sources.vault_kv import VaultKVSource

    def handler(request: Request) -> Response:
        _time.sleep(0.005)
        return json_response(200, {"data": {"keys": ["deeper/"]}})

    client = VaultClient(VaultSettings(addr=("http://vault:8200",), token="t"),
                         transport=MockTransport(handler))
    source = VaultKVSource(client=client, kv_versions={"secret": 2})
    started = _time.monotonic()
    with pytest.raises(DeadlineExceededError):
        source.expand(parse_reference("vault://secret/app/**"), Deadline(0.3))
    assert _time.monotonic() - started < 2
