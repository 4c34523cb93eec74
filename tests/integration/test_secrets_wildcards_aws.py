"""Whole paths as one reference on moto over HTTP: SSM by path (paged), Secrets Manager prefixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.aws_calls import CallCounter, quiet_setup
from harness.canary import LeakCanary
from harness.servers import Moto
from vaultkit.backends import aws
from vaultkit.errors import SecretsLoadError
from vaultkit.secrets import load_secrets

pytestmark = pytest.mark.integration
VAULTKIT = str(Path(sys.executable).parent / "vaultkit")


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def test_ssm_path_wildcard_pages_through_25_parameters(
        moto_server: Moto, leak_canary: LeakCanary) -> None:
    config = moto_server.config()
    ssm = aws.client("ssm", config)
    base = f"/wild-{_uid()}/app"
    values = {f"param-{i:02d}": leak_canary.new(f"v{i}") for i in range(25)}
    with quiet_setup():
        for name, value in values.items():
            ssm.put_parameter(Name=f"{base}/{name}", Value=value, Type="SecureString")
        ssm.put_parameter(Name=f"{base}/nested/db.password", Value="deep", Type="String")
    counter = CallCounter(ssm)
    loaded = load_secrets({"app": f"ssm://{base}/*"}, config=config)
    expected = {name.upper().replace("-", "_"): value for name, value in values.items()}
    assert loaded.as_env() == expected  # the nested one is not directly under the path
    # 25 parameters at 10 a page: 3 pages of GetParametersByPath, nothing read twice
    assert counter.calls == {"GetParametersByPath": 3}
    deep = load_secrets({"APP_": f"ssm://{base}/**"}, config=config)
    assert deep.reveal("APP_NESTED_DB_PASSWORD") == "deep"
    assert len(deep) == 26
    leak_canary.watch(loaded, deep, loaded.plan.describe())


def test_secrets_manager_prefix_then_batch_read(moto_server: Moto,
                                                leak_canary: LeakCanary) -> None:
    config = moto_server.config()
    sm = aws.client("secretsmanager", config)
    prefix = f"wild-{_uid()}"
    with quiet_setup():
        for name in ("api-key", "db/password"):
            sm.create_secret(Name=f"{prefix}/svc/{name}", SecretString=leak_canary.new(name))
        sm.create_secret(Name=f"{prefix}/svc-other/x", SecretString="not under the prefix")
    counter = CallCounter(sm)
    loaded = load_secrets({"SVC_": f"awssm://{prefix}/svc/*"}, config=config)
    assert sorted(loaded) == ["SVC_API_KEY"]
    assert counter.calls["ListSecrets"] == 1 and counter.calls["BatchGetSecretValue"] == 1
    deep = load_secrets({"SVC_": f"awssm://{prefix}/svc/**"}, config=config)
    assert sorted(deep) == ["SVC_API_KEY", "SVC_DB_PASSWORD"]
    assert deep.plan.expanded["SVC_"] == ["SVC_API_KEY", "SVC_DB_PASSWORD"]
    leak_canary.watch(loaded, deep)


def test_a_name_collision_names_both_sources(moto_server: Moto) -> None:
    config = moto_server.config()
    ssm = aws.client("ssm", config)
    sm = aws.client("secretsmanager", config)
    uid = _uid()
    with quiet_setup():
        ssm.put_parameter(Name=f"/c-{uid}/db-password", Value="a", Type="String")
        sm.create_secret(Name=f"c-{uid}/db.password", SecretString="b")
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"from_ssm": f"ssm:///c-{uid}/*", "from_sm": f"awssm://c-{uid}/*"},
                     config=config)
    err = info.value.failures["DB_PASSWORD"]
    assert err.category == "invalid"
    assert f"ssm:///c-{uid}/*" in str(err) and f"awssm://c-{uid}/*" in str(err)
    # an explicit name collides with a derived one, too
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"DB_PASSWORD": "env://PATH", "x": f"ssm:///c-{uid}/*"}, config=config)
    assert "DB_PASSWORD = env://PATH" in str(info.value.failures["DB_PASSWORD"])


def test_plan_shows_what_a_wildcard_expanded_to(moto_server: Moto, tmp_path: Path,
                                               leak_canary: LeakCanary) -> None:
    config = moto_server.config()
    ssm = aws.client("ssm", config)
    base = f"/plan-{_uid()}"
    with quiet_setup():
        for name in ("a", "b"):
            ssm.put_parameter(Name=f"{base}/{name}", Value=leak_canary.new(), Type="String")
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server.endpoint_url}
    r = subprocess.run([VAULTKIT, "secrets", "plan", "-s", f"P_=ssm://{base}/*"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"P_ = ssm://{base}/* expanded to 2 name(s): P_A, P_B" in r.stdout
    assert f"ssm: GetParametersByPath {base} x1 page(s)" in r.stdout
    js = subprocess.run([VAULTKIT, "secrets", "plan", "--json", "-s", f"P_=ssm://{base}/*"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert json.loads(js.stdout)["expanded"] == {"P_": ["P_A", "P_B"]}
    # the listing read the values; the plan shows none of them
    leak_canary.watch_text(r.stdout + r.stderr + js.stdout + js.stderr)
