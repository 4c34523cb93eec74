"""``archive setup`` on a shared bucket, against moto over HTTP.

The bucket already holds the team's policy statement, its lifecycle rules (one of which
would cut vaultkit's retention short) and default encryption with another KMS key. Setup
must keep all of it, show its changes as a diff on ``--dry-run`` without writing, be a
no-op the second time, never add the TLS-only deny on an http:// endpoint, and remove
its own deny when ``s3_require_tls = false``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vaultkit.archive import share
from vaultkit.backends import aws
from vaultkit.cli import cli
from vaultkit.storage.s3 import MIN_PART_SIZE, S3Store
from vaultkit.storage.s3_setup import read_state

pytestmark = pytest.mark.integration

TEAM = {"Sid": "TeamReadOnly", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject"}
TEAM_RULES = [
    {"ID": "team-logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
     "Expiration": {"Days": 90}},
    # Everything in the bucket expires after 3 days: shorter than vaultkit's 7/14/30.
    {"ID": "team-scratch", "Filter": {"Prefix": ""}, "Status": "Enabled",
     "Expiration": {"Days": 3}},
    # Tagged objects only: vaultkit's objects have no tags, so no conflict.
    {"ID": "team-tagged", "Filter": {"Tag": {"Key": "tier", "Value": "cold"}},
     "Status": "Enabled", "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]},
]


def shared_bucket(moto_server: Any, *, with_deny: bool = False) -> tuple[str, dict[str, Any]]:
    """A bucket as a team uses it; returns its name and its KMS key id."""
    c = aws.client("s3", moto_server.config())
    kms = aws.client("kms", moto_server.config())
    other_key = kms.create_key(Description="team key")["KeyMetadata"]["KeyId"]
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    c.create_bucket(Bucket=bucket)
    statements = [{**TEAM, "Resource": f"arn:aws:s3:::{bucket}/*"}]
    if with_deny:  # what an https setup (or an older vaultkit) left behind
        statements.append({
            "Sid": "vaultkit-deny-insecure-transport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    c.put_bucket_lifecycle_configuration(Bucket=bucket,
                                         LifecycleConfiguration={"Rules": TEAM_RULES})
    c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": other_key},
        "BucketKeyEnabled": True}]})
    return bucket, {"kms": other_key}


def state(moto_server: Any, bucket: str) -> dict[str, Any]:
    return read_state(aws.client("s3", moto_server.config()), bucket).as_dict()


def config_file(tmp_path: Path, moto_server: Any, *, require_tls: bool) -> Path:
    path = tmp_path / "vaultkit.toml"
    path.write_text(f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_server.endpoint_url}"\n'
                    f"[archive]\ns3_require_tls = {'true' if require_tls else 'false'}\n")
    return path


def run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), "archive", *args])


def test_setup_keeps_what_it_does_not_own(moto_server: Any, tmp_path: Path) -> None:
    bucket, keys = shared_bucket(moto_server)
    config = config_file(tmp_path, moto_server, require_tls=True)
    before = state(moto_server, bucket)

    # --dry-run: a before/after diff, findings on stderr, nothing written.
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "+++ lifecycle (after)" in r.stdout and '"ID": "vaultkit-ttl-30d"' in r.stdout
    assert "policy (after)" not in r.stdout  # http://: no TLS-only deny to add
    assert "encryption (after)" not in r.stdout and "public-access-block (after)" not in r.stdout
    assert "team-scratch" in r.stderr and "TLS-only deny not added" in r.stderr
    assert state(moto_server, bucket) == before

    # The real run, as JSON.
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["applied"] is True and report["changes"] == ["lifecycle"]
    assert {f["setting"] for f in report["findings"]} == {
        "policy", "lifecycle", "encryption", "public-access-block"}
    after = state(moto_server, bucket)
    assert after["policy"] == before["policy"]  # TeamReadOnly untouched, no deny on http
    assert after["encryption"] == before["encryption"]  # the team's KMS key stays
    assert after["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
        "KMSMasterKeyID"] == keys["kms"]
    assert after["public-access-block"] is None  # bucket-wide: not ours to set
    rules = {r["ID"]: r for r in after["lifecycle"]}
    for rule in TEAM_RULES:
        assert rules[rule["ID"]] == rule  # kept byte for byte, conflicting one included
    assert [rules[f"vaultkit-ttl-{d}d"]["Filter"]["Prefix"] for d in (7, 14, 30)] == [
        "bot/ttl-7d/", "bot/ttl-14d/", "bot/ttl-30d/"]

    # Second run: nothing to do.
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--json")
    assert json.loads(r.stdout)["changes"] == []
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--dry-run")
    assert "no changes" in r.stdout
    assert state(moto_server, bucket) == after

    # And the bucket works for vaultkit (its objects carry their own SSE header).
    store = S3Store(bucket, "bot", config=moto_server.config(), part_size=MIN_PART_SIZE)
    result = share([("a.txt", [b"hello"])], store=store)
    head = aws.client("s3", moto_server.config()).head_object(
        Bucket=bucket, Key=f"bot/{result.object_key}")
    assert head["ServerSideEncryption"] == "AES256"


def test_force_names_the_bucket_wide_settings_it_may_change(moto_server: Any,
                                                             tmp_path: Path) -> None:
    bucket, _ = shared_bucket(moto_server)
    config = config_file(tmp_path, moto_server, require_tls=True)
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--force", "encryption",
            "--force", "public-access-block", "--force", "lifecycle", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report["changes"]) == {"lifecycle", "encryption", "public-access-block"}
    assert all(f["forced"] for f in report["findings"] if f["setting"] != "policy")
    after = state(moto_server, bucket)
    assert after["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert after["public-access-block"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True}
    rules = {r["ID"]: r for r in after["lifecycle"]}
    assert rules["team-scratch"]["Status"] == "Disabled"  # disabled, never deleted
    assert rules["team-logs"] == TEAM_RULES[0] and rules["team-tagged"] == TEAM_RULES[2]
    assert after["policy"]["Statement"][0]["Sid"] == "TeamReadOnly"
    r = run(config, "setup", "--store", f"s3://{bucket}/bot", "--force", "bogus")
    assert r.exit_code == 2


def test_tls_deny_is_removed_when_turned_off(moto_server: Any, tmp_path: Path) -> None:
    bucket, _ = shared_bucket(moto_server, with_deny=True)
    store = S3Store(bucket, "bot", config=moto_server.config(), part_size=MIN_PART_SIZE,
                    require_tls=False)
    plan = store.ensure_bucket(dry_run=True)
    assert plan.changes == ["policy", "lifecycle"]
    assert '-      "Sid": "vaultkit-deny-insecure-transport"' in plan.diff()
    assert len(state(moto_server, bucket)["policy"]["Statement"]) == 2  # dry run: unchanged
    config = config_file(tmp_path, moto_server, require_tls=False)
    r = run(config, "setup", "--store", f"s3://{bucket}/bot")
    assert r.exit_code == 0, r.output
    assert [s["Sid"] for s in state(moto_server, bucket)["policy"]["Statement"]] == [
        "TeamReadOnly"]
    share([("a.txt", [b"x"])], store=store)  # plain HTTP works again

    # A bucket whose only statement was vaultkit's own ends up with no policy at all.
    c = aws.client("s3", moto_server.config())
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(S3Store(
        bucket, config=moto_server.config()).bucket_policy()))
    assert store.ensure_bucket().changes == ["policy"]
    assert state(moto_server, bucket)["policy"] is None
    assert store.ensure_bucket().changes == []


def test_setup_creates_a_new_bucket_with_every_setting(moto_server: Any) -> None:
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", "x", config=moto_server.config())
    plan = store.ensure_bucket()
    assert plan.changes == ["bucket", "lifecycle", "encryption", "public-access-block"]
    after = state(moto_server, store.bucket)
    assert after["public-access-block"]["BlockPublicPolicy"] is True
    assert after["policy"] is None  # http endpoint: still no deny
    assert store.ensure_bucket().changes == []
