"""The ownership rule of ``archive setup`` as a pure plan (no server): https endpoints,
legacy statements, conflicts, and idempotence."""

from __future__ import annotations

from typing import Any

import pytest

from vaultkit.errors import ConfigError
from vaultkit.storage.s3_setup import (
    TLS_SID,
    BucketState,
    lifecycle_rules,
    plan_setup,
    tls_statement,
)

TEAM = {"Sid": "TeamReadOnly", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}


def plan(before: BucketState, **kw: Any) -> Any:
    opts: dict[str, Any] = {"bucket": "b", "prefix": "bot/", "retention_days": (7, 14, 30),
                            "kms_key_id": None, "require_tls": True, "https": True}
    opts.update(kw)
    return plan_setup(before, **opts)


def settled(p: Any) -> BucketState:
    return p.after


def test_https_adds_the_deny_after_foreign_statements_and_is_then_a_no_op() -> None:
    before = BucketState(exists=True, policy={"Version": "2012-10-17", "Id": "team",
                                              "Statement": TEAM},  # a lone dict is legal
                         public_access_block=None)
    p = plan(before)
    assert "policy" in p.changes
    assert p.after.policy["Id"] == "team"
    assert p.after.policy["Statement"] == [TEAM, tls_statement("b")]
    again = plan(settled(p))
    assert again.changes == [] and again.diff() == ""


def test_legacy_statement_is_ours_and_gets_renamed() -> None:
    legacy = {**tls_statement("b"), "Sid": "VaultkitDenyInsecureTransport"}
    before = BucketState(exists=True, policy={"Version": "2012-10-17",
                                              "Statement": [legacy, TEAM]})
    p = plan(before)
    assert [s["Sid"] for s in p.after.policy["Statement"]] == ["TeamReadOnly", TLS_SID]
    off = plan(p.after, require_tls=False)
    assert off.after.policy["Statement"] == [TEAM]
    http = plan(p.after, https=False)
    assert http.after.policy["Statement"] == [TEAM]
    assert any("http://" in f.message for f in http.findings)


@pytest.mark.parametrize("rule,conflict", [
    ({"ID": "all-3d", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "Expiration": {"Days": 3}}, True),
    ({"ID": "bot-20d", "Filter": {"Prefix": "bot/"}, "Status": "Enabled",
      "Expiration": {"Days": 20}}, True),  # fine for 7d and 14d, cuts 30d short
    ({"ID": "legacy", "Prefix": "bot/ttl-7d", "Status": "Enabled",
      "Expiration": {"Days": 1}}, True),  # the pre-Filter form
    ({"ID": "glacier", "Filter": {"And": {"Prefix": "bot/"}}, "Status": "Enabled",
      "Transitions": [{"Days": 2, "StorageClass": "GLACIER"}]}, True),
    ({"ID": "dated", "Filter": {"Prefix": "bot/ttl-"}, "Status": "Enabled",
      "Expiration": {"Date": "2030-01-01T00:00:00Z"}}, True),
    ({"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
      "Expiration": {"Days": 1}}, False),
    ({"ID": "off", "Filter": {"Prefix": ""}, "Status": "Disabled",
      "Expiration": {"Days": 1}}, False),
    ({"ID": "tagged", "Filter": {"And": {"Prefix": "", "Tags": [{"Key": "a", "Value": "b"}]}},
      "Status": "Enabled", "Expiration": {"Days": 1}}, False),
    ({"ID": "long", "Filter": {"Prefix": ""}, "Status": "Enabled",
      "Expiration": {"Days": 365}}, False),
])
def test_conflicting_rules_are_reported_kept_and_only_disabled_when_forced(
        rule: dict[str, Any], conflict: bool) -> None:
    before = BucketState(exists=True, lifecycle=(rule,))
    p = plan(before)
    assert p.after.lifecycle[0] == rule  # kept as it was
    assert any(f.setting == "lifecycle" for f in p.findings) is conflict
    forced = plan(before, force=["lifecycle"])
    assert forced.after.lifecycle[0]["Status"] == ("Disabled" if conflict else rule["Status"])


def test_our_rules_are_updated_in_place_and_foreign_order_is_kept() -> None:
    old_ours = {"ID": "vaultkit-ttl-7d", "Filter": {"Prefix": "bot/ttl-7d/"},
                "Status": "Enabled", "Expiration": {"Days": 9}}
    foreign = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
               "Expiration": {"Days": 90}}
    p = plan(BucketState(exists=True, lifecycle=(old_ours, foreign)))
    assert p.after.lifecycle[0] == foreign
    assert list(p.after.lifecycle[1:]) == lifecycle_rules("bot/", (7, 14, 30))
    assert plan(p.after).changes == []


def test_bucket_wide_settings_only_on_a_new_bucket_or_when_forced() -> None:
    other = {"Rules": [{"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:r:1:key/team"}}]}
    before = BucketState(exists=True, encryption=other,
                         public_access_block={"BlockPublicAcls": False})
    p = plan(before, kms_key_id="mine")
    assert p.after.encryption == other and p.after.public_access_block == before.public_access_block
    assert {f.setting for f in p.findings} >= {"encryption", "public-access-block"}
    same_key = plan(before, kms_key_id="team")  # the ARN's key id matches
    assert not any(f.setting == "encryption" for f in same_key.findings)
    forced = plan(before, kms_key_id="mine", force=["encryption", "public-access-block"])
    assert forced.after.encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "mine"}
    assert all(forced.after.public_access_block.values())
    new = plan(BucketState(exists=False))
    assert new.changes == ["bucket", "policy", "lifecycle", "encryption",
                           "public-access-block"]


def test_unknown_force_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        plan(BucketState(exists=True), force=["everything"])


@pytest.mark.parametrize("prefix", ["", "bot/"])
def test_owned_rules_act_only_on_vaultkits_key_prefixes(prefix: str) -> None:
    """A store at the bucket root must not abort the team's own multipart uploads: every
    action of vaultkit's rules (expiry and aborting incomplete uploads) is scoped to
    ``<prefix>ttl-<N>d/``, where only vaultkit's objects live."""
    p = plan(BucketState(exists=True), prefix=prefix)
    owned = [r for r in p.after.lifecycle if r["ID"].startswith("vaultkit-")]
    assert owned
    for rule in owned:
        assert rule["Filter"]["Prefix"] in {f"{prefix}ttl-{d}d/" for d in (7, 14, 30)}
    assert all(r["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
               for r in owned)


def test_the_bucket_wide_abort_rule_of_earlier_versions_is_removed() -> None:
    legacy = {"ID": "vaultkit-abort-incomplete-uploads", "Filter": {"Prefix": ""},
              "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
    team = {"ID": "team", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
            "Expiration": {"Days": 90}}
    p = plan(BucketState(exists=True, lifecycle=(legacy, team)), prefix="")
    ids = [r["ID"] for r in p.after.lifecycle]
    assert ids == ["team", "vaultkit-ttl-7d", "vaultkit-ttl-14d", "vaultkit-ttl-30d"]
    assert plan(p.after, prefix="").changes == []  # then a no-op


class _RecordingS3:
    """Just enough of an S3 client for read_state/apply_plan: a bucket with a team rule
    and a non-default bucket-wide transition minimum, recording what setup writes."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def head_bucket(self, **_: Any) -> None:
        return None

    def get_bucket_policy(self, **_: Any) -> dict[str, Any]:
        import json

        return {"Policy": json.dumps({"Version": "2012-10-17", "Statement": [TEAM]})}

    def get_bucket_lifecycle_configuration(self, **_: Any) -> dict[str, Any]:
        return {"Rules": [{"ID": "team-archive", "Filter": {"Prefix": "logs/"},
                           "Status": "Enabled",
                           "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}],
                "TransitionDefaultMinimumObjectSize": "varies_by_storage_class"}

    def get_bucket_encryption(self, **_: Any) -> dict[str, Any]:
        return {"ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}

    def get_public_access_block(self, **_: Any) -> dict[str, Any]:
        return {"PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}}

    def put_bucket_lifecycle_configuration(self, **kwargs: Any) -> None:
        self.puts.append(kwargs)

    def put_bucket_policy(self, **kwargs: Any) -> None:
        self.puts.append(kwargs)


def test_lifecycle_write_keeps_the_buckets_transition_minimum() -> None:
    """PutBucketLifecycleConfiguration without TransitionDefaultMinimumObjectSize resets
    the bucket-wide setting to AWS's default: setup must write back what it read."""
    from vaultkit.storage.s3_setup import apply_plan, read_state

    s3 = _RecordingS3()
    state = read_state(s3, "b")
    p = plan(state, https=False)
    assert "lifecycle" in p.changes
    apply_plan(s3, p, region="us-east-1")
    (put,) = [c for c in s3.puts if "LifecycleConfiguration" in c]
    assert put["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert put["LifecycleConfiguration"]["Rules"][0]["ID"] == "team-archive"
