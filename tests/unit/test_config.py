from __future__ import annotations

from pathlib import Path

import pytest

from vaultkit.config import Config
from vaultkit.errors import ConfigError


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    c = Config.load(env={}, cwd=tmp_path)
    assert c.source is None
    assert c.vault.addr == ()
    assert c.aws.endpoint_url is None
    assert c.local_keys.store == "auto"


def test_vaultkit_toml(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text(
        '[vault]\naddr = ["http://a:8200", "http://b:8200"]\nauth = "approle"\n'
        'role_id = "r"\n[aws]\nregion = "eu-west-1"\n[secrets]\nDB = "vault://kv/app#db"\n'
    )
    c = Config.load(env={}, cwd=tmp_path)
    assert c.vault.addr == ("http://a:8200", "http://b:8200")
    assert c.vault.auth == "approle"
    assert c.aws.region == "eu-west-1"
    assert c.section("secrets") == {"DB": "vault://kv/app#db"}
    assert c.source and c.source.endswith("vaultkit.toml")


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vaultkit.aws]\nregion = "us-west-2"\n')
    c = Config.load(env={}, cwd=tmp_path)
    assert c.aws.region == "us-west-2"
    assert c.source and c.source.endswith("[tool.vaultkit]")


def test_vaultkit_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.vaultkit.aws]\nregion = "us-west-2"\n')
    (tmp_path / "vaultkit.toml").write_text('[aws]\nregion = "eu-west-1"\n')
    assert Config.load(env={}, cwd=tmp_path).aws.region == "eu-west-1"


def test_ecosystem_vars_override_file_and_vaultkit_vars_override_both(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text('[vault]\naddr = "http://file:8200"\n')
    env = {"VAULT_ADDR": "http://eco:8200", "VAULT_TOKEN": "t", "VAULT_NAMESPACE": "ns",
           "VAULT_CACERT": "/ca.pem", "AWS_REGION": "ap-south-1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    c = Config.load(env=env, cwd=tmp_path)
    assert c.vault.addr == ("http://eco:8200",)
    assert c.vault.token == "t"
    assert c.vault.namespace == "ns"
    assert c.vault.cacert == "/ca.pem"
    assert c.aws.region == "ap-south-1"
    assert c.aws.endpoint_url == "http://127.0.0.1:5000"
    env["VAULTKIT_VAULT_ADDR"] = "http://a:1,http://b:2"
    env["VAULTKIT_AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    env["VAULTKIT_LOCAL_KEYS_STORE"] = "file"
    env["VAULTKIT_CA_HOME"] = "/srv/ca"
    c = Config.load(env=env, cwd=tmp_path)
    assert c.vault.addr == ("http://a:1", "http://b:2")
    assert c.aws.endpoint_url == "http://127.0.0.1:9"
    assert c.local_keys.store == "file"
    assert c.section("ca") == {"home": "/srv/ca"}


def test_bao_addr_is_honoured(tmp_path: Path) -> None:
    assert Config.load(env={"BAO_ADDR": "http://bao:8200"}, cwd=tmp_path).vault.addr == (
        "http://bao:8200",)


def test_token_is_not_in_repr(tmp_path: Path, leak_canary) -> None:
    token = leak_canary.new()
    c = Config.load(env={"VAULT_TOKEN": token}, cwd=tmp_path)
    leak_canary.watch(c, c.vault)


@pytest.mark.parametrize("text, match", [
    ("[vault]\nbogus = 1\n", r"unknown setting \[vault\] bogus"),
    ("[vault]\ntimeout = \"soon\"\n", "must be a number"),
    ("[run]\ngrace = -1\n", "run.grace must be a number of 0 or more"),
    ("[run]\nrefresh = nan\n", "run.refresh must be a number of 0 or more"),
    ("[vault]\nmax_connections = -4\n", "must be a number of 0 or more"),
    ("[vault]\ntls_verify = \"maybe\"\n", "must be a boolean"),
    ("vault = 3\n", "must be a table"),
    ("[vault\n", "invalid TOML"),
])
def test_bad_files_are_config_errors(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "vaultkit.toml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        Config.load(env={}, cwd=tmp_path)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="not found"):
        Config.load(env={"VAULTKIT_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)


# --- typos, the schema and the generated reference ---------------------------------------

@pytest.mark.parametrize("text, message, line", [
    ("[archive]\nrequire_tls = false\n",
     "unknown setting [archive] require_tls; did you mean s3_require_tls?", 2),
    ("# comment\n[vault]\naddr = 'x'\ntimout = 3\n",
     "unknown setting [vault] timout; did you mean timeout?", 4),
    ("[archiv]\nkms_key_id = 'k'\n", "unknown section [archiv]; did you mean archive?", 1),
    ("[ca]\nhomedir = '/srv/ca'\n", "unknown setting [ca] homedir; did you mean home?", 2),
    ("[secrets]\nDB = 'env://DB'\n[secrets.options]\nkv_version = {kv = 2}\n",
     "unknown setting [secrets.options] kv_version; did you mean kv_versions?", 4),
    ("[local_keys]\nstor = 'file'\n", "unknown setting [local_keys] stor; did you mean store?",
     2),
    ("[keys]\nprovider = ['local://a']\n",
     "unknown setting [keys] provider; did you mean providers?", 2),
    ("[fields]\nkeyset = 'file://k.json'\n", "unknown section [fields]; did you mean field?",
     1),
    # [secrets] takes any NAME, but only as a reference string: a table is a typo'd
    # [secrets.options], a number a mistake, both caught where they are written.
    ("[secrets]\nDB = 'env://DB'\n[secrets.option]\nkv_versions = {kv = 2}\n",
     "[secrets] option must be a reference string; did you mean secrets.options?", 3),
    ("[secrets]\nDB = 5\n", "[secrets] DB must be a reference string", 2),
])
def test_typos_name_file_line_and_the_nearest_key(tmp_path: Path, text: str, message: str,
                                                  line: int) -> None:
    (tmp_path / "vaultkit.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Config.load(env={}, cwd=tmp_path)
    assert info.value.message == message
    assert info.value.reference == f"{tmp_path / 'vaultkit.toml'}:{line}"


def test_pyproject_typo_points_at_the_pyproject_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.vaultkit.archive]\ns3_require_tsl = false\n')
    with pytest.raises(ConfigError, match="did you mean s3_require_tls") as info:
        Config.load(env={}, cwd=tmp_path)
    assert info.value.reference == f"{tmp_path / 'pyproject.toml'}:5"


@pytest.mark.parametrize("var, hint", [
    ("VAULTKIT_VAULT_ADRR", "did you mean VAULTKIT_VAULT_ADDR?"),
    ("VAULTKIT_ARCHIVE_REQUIRE_TLS", "did you mean VAULTKIT_ARCHIVE_S3_REQUIRE_TLS?"),
    ("VAULTKIT_CA_HOMEDIR", "did you mean VAULTKIT_CA_HOME?"),
    ("VAULTKIT_CA_PASSPHRAS", "did you mean VAULTKIT_CA_PASSPHRASE?"),
    ("VAULTKIT_NOPE", ""),
])
def test_unknown_vaultkit_variables(tmp_path: Path, var: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown variable {var}") as info:
        Config.load(env={var: "x"}, cwd=tmp_path)
    assert info.value.message.endswith(hint)
    assert info.value.reference == f"env:{var}"


def test_variables_that_are_not_settings_are_left_alone(tmp_path: Path) -> None:
    from vaultkit.settings_schema import ENV_ONLY

    env = {var: "x" for var in ENV_ONLY if var not in ("VAULTKIT_CONFIG", "VAULTKIT_AUDIT_LOG")}
    assert Config.load(env=env, cwd=tmp_path).source is None
    # [secrets] takes any name, from the file and from VAULTKIT_SECRETS_<NAME>.
    c = Config.load(env={"VAULTKIT_SECRETS_API_KEY": "env://K"}, cwd=tmp_path)
    assert c.section("secrets") == {"api_key": "env://K"}


def test_capability_values_are_typed(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text("[archive]\ns3_require_tls = 'off'\n")
    env = {"VAULTKIT_KEYS_PROVIDERS": "local://a, memory://b"}
    c = Config.load(env=env, cwd=tmp_path)
    assert c.section("archive") == {"s3_require_tls": False}
    assert c.section("keys") == {"providers": ["local://a", "memory://b"]}
    (tmp_path / "vaultkit.toml").write_text("[ca]\nhome = 3\n")
    with pytest.raises(ConfigError, match=r"ca\.home must be a string") as info:
        Config.load(env={}, cwd=tmp_path)
    assert info.value.reference and info.value.reference.endswith("vaultkit.toml:2")


def test_origins_name_file_line_and_variable(tmp_path: Path) -> None:
    (tmp_path / "vaultkit.toml").write_text(
        'audit_log = "a.log"\n[vault]\naddr = "http://f:1"\ntimeout = 2\n'
        '[secrets]\nDB = "env://DB"\n')
    c = Config.load(env={"VAULT_ADDR": "http://e:1", "VAULTKIT_CA_HOME": "/srv/ca"},
                    cwd=tmp_path)
    f = str(tmp_path / "vaultkit.toml")
    assert c.origins == {"audit_log": f"{f}:1", "vault.addr": "env:VAULT_ADDR",
                         "vault.timeout": f"{f}:4", "secrets.DB": f"{f}:6",
                         "ca.home": "env:VAULTKIT_CA_HOME"}


def test_schema_and_typed_sections_agree() -> None:
    """Adding a field to VaultSettings/AwsSettings/LocalKeySettings needs its Setting too."""
    from dataclasses import fields

    from vaultkit.config import AwsSettings, LocalKeySettings, VaultSettings
    from vaultkit.settings_schema import settings_of

    for name, cls in (("vault", VaultSettings), ("aws", AwsSettings),
                      ("local_keys", LocalKeySettings)):
        defined = settings_of(name)
        assert {f.name for f in fields(cls)} == set(defined), name
        for f in fields(cls):
            default = getattr(cls(), f.name)
            assert defined[f.name].default == default, f"{name}.{f.name}"


def test_every_section_read_in_the_code_is_defined() -> None:
    """``config.section("x").get("key")`` anywhere in src/ reads a defined setting."""
    import re

    from vaultkit.settings_schema import FREE_FORM, lookup

    src = Path(__file__).resolve().parents[2] / "src" / "vaultkit"
    pattern = re.compile(r"section\(\"(\w+)\"\)\.get\(\"(\w+)\"")
    found = set()
    for path in src.rglob("*.py"):
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert found, "the pattern no longer finds the reads"
    for section, key in sorted(found):
        assert section in FREE_FORM or lookup(section, key), f"[{section}] {key}"
    # Every table read at all (``table = config.section("run")``) is a known one.
    from vaultkit.settings_schema import sections

    read = set()
    for path in src.rglob("*.py"):
        read |= set(re.findall(r"\.section\(\"(\w+)\"\)", path.read_text(encoding="utf-8")))
    assert read - {"Commands"} <= set(sections()), read - set(sections())


def test_docs_config_md_is_current() -> None:
    from vaultkit.config_reference import markdown

    committed = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert committed.read_text(encoding="utf-8") == markdown(), (
        "docs/config.md is stale: python -m vaultkit.config_reference > docs/config.md")


def test_run_defaults_match_the_command() -> None:
    """``[run]`` is documented from the schema; its defaults are the command's."""
    from vaultkit.cli.run import DEFAULTS
    from vaultkit.settings_schema import settings_of

    assert {k: s.default for k, s in settings_of("run").items()} == DEFAULTS
