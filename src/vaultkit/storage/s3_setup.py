"""``vaultkit archive setup`` on a bucket that other people use too.

S3 keeps one policy and one lifecycle configuration per bucket, and ``PutBucketPolicy`` /
``PutBucketLifecycleConfiguration`` *replace* them whole. So setup is a read-modify-write
with an ownership rule:

* **vaultkit owns** the policy statements whose ``Sid`` and the lifecycle rules whose ``ID``
  start with ``vaultkit-`` (plus the ``VaultkitDenyInsecureTransport`` statement that older
  versions wrote). Those are added, updated or removed to match the store's settings.
* **Everything else is kept** byte for byte: other statements, other rules, their order.
* **Bucket-wide settings** (default encryption, Block Public Access) are only set on a
  bucket that setup itself creates. On an existing bucket a difference is *reported* and
  left alone unless ``force`` names it (``encryption``, ``public-access-block``). vaultkit's
  own objects do not depend on them: every upload carries its own SSE header, and objects
  are never public (no ACLs, no public policy).
* A foreign lifecycle rule that would expire or transition vaultkit's objects before their
  retention ends is a **conflict**: reported, and disabled (never deleted) only with
  ``force=("lifecycle",)``.
* The TLS-only deny (``aws:SecureTransport = false``) is added only when the endpoint is
  ``https://`` and ``require_tls`` is on; otherwise vaultkit's statement is removed. On an
  ``http://`` endpoint (moto, a lab MinIO) it would refuse every request with a bare 403.

:func:`plan_setup` is a pure function from the bucket's current state to the wanted one,
so the rules are unit-tested without a server; ``dry_run`` prints its diff.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError

OWNED_PREFIX = "vaultkit-"
#: Statement ids written by vaultkit before the ``vaultkit-`` rule: still ours to update.
LEGACY_SIDS = frozenset({"VaultkitDenyInsecureTransport"})
TLS_SID = "vaultkit-deny-insecure-transport"
#: What ``--force`` may name.
FORCE_NAMES = ("encryption", "public-access-block", "lifecycle")
SETTINGS = ("bucket", "policy", "lifecycle", "encryption", "public-access-block")
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}


@dataclass(frozen=True)
class BucketState:
    """The parts of a bucket's configuration setup reads and may write."""

    exists: bool
    policy: dict[str, Any] | None = None
    lifecycle: tuple[dict[str, Any], ...] = ()
    encryption: dict[str, Any] | None = None
    public_access_block: dict[str, Any] | None = None
    #: The lifecycle configuration's bucket-wide ``TransitionDefaultMinimumObjectSize``
    #: as read. Not vaultkit's: a lifecycle write passes it back unchanged (left out,
    #: S3 would reset it to its default).
    transition_minimum: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"bucket": {"exists": self.exists}, "policy": self.policy,
                "lifecycle": list(self.lifecycle), "encryption": self.encryption,
                "public-access-block": self.public_access_block}


@dataclass(frozen=True)
class Finding:
    """Something setup saw and did not change (or changed only because it was forced)."""

    setting: str
    message: str
    forced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "message": self.message, "forced": self.forced}


@dataclass(frozen=True)
class SetupPlan:
    """Before and after, setting by setting; ``changes`` lists what an apply writes."""

    bucket: str
    before: BucketState
    after: BucketState
    findings: tuple[Finding, ...] = ()
    applied: bool = False

    @property
    def changes(self) -> list[str]:
        b, a = self.before.as_dict(), self.after.as_dict()
        return [name for name in SETTINGS if b[name] != a[name]]

    def diff(self) -> str:
        """A unified diff of every changed setting (JSON, keys sorted)."""
        b, a = self.before.as_dict(), self.after.as_dict()
        out: list[str] = []
        for name in self.changes:
            out.extend(difflib.unified_diff(
                _pretty(b[name]), _pretty(a[name]), fromfile=f"{name} (before)",
                tofile=f"{name} (after)", lineterm=""))
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "applied": self.applied, "changes": self.changes,
                "findings": [f.as_dict() for f in self.findings],
                "before": self.before.as_dict(), "after": self.after.as_dict(),
                "diff": self.diff()}


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()


def owned(name: object) -> bool:
    return isinstance(name, str) and (name.startswith(OWNED_PREFIX) or name in LEGACY_SIDS)


def check_force(force: Iterable[str]) -> frozenset[str]:
    names = frozenset(force)
    unknown = sorted(names - set(FORCE_NAMES))
    if unknown:
        raise ConfigError(f"--force takes {', '.join(FORCE_NAMES)}", reference=",".join(unknown))
    return names


# --- the wanted pieces -----------------------------------------------------------------


def tls_statement(bucket: str) -> dict[str, Any]:
    """Refuse any request not made over TLS (``aws:SecureTransport``, a string condition)."""
    arn = f"arn:aws:s3:::{bucket}"
    return {"Sid": TLS_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def lifecycle_rules(prefix: str, retention_days: Iterable[int]) -> list[dict[str, Any]]:
    """One rule per retention class, on ``<prefix>ttl-<N>d/`` only. Aborting incomplete
    uploads after a day is part of each rule (every upload goes to such a key), not a
    rule on ``<prefix>``: with an empty prefix that would abort the whole bucket's
    uploads, other people's included."""
    return [{
        "ID": f"{OWNED_PREFIX}ttl-{days}d",
        "Filter": {"Prefix": f"{prefix}ttl-{days}d/"},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    } for days in retention_days]


def encryption_config(kms_key_id: str | None) -> dict[str, Any]:
    sse: dict[str, Any] = {"SSEAlgorithm": "AES256"}
    if kms_key_id:
        sse = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": sse,
                       "BucketKeyEnabled": bool(kms_key_id)}]}


# --- comparisons -----------------------------------------------------------------------


def _covers(have: Any, want: Any) -> bool:
    """``have`` holds everything ``want`` says (S3 may add defaults when it echoes a rule)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _covers(have[k], v)
                                              for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(
            _covers(h, w) for h, w in zip(have, want, strict=True))
    return bool(have == want)


def _same_kms_key(have: str | None, want: str | None) -> bool:
    if not have or not want:
        return have == want
    return have == want or have.endswith(f"/{want}") or want.endswith(f"/{have}")


def _default_sse(config: dict[str, Any] | None) -> dict[str, Any]:
    try:
        rule = (config or {})["Rules"][0]
        sse: dict[str, Any] = rule["ApplyServerSideEncryptionByDefault"]
        return sse
    except (KeyError, IndexError, TypeError):
        return {}


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule applies to, or ``None`` if it only matches tagged objects
    (vaultkit's objects have no tags, so such a rule never touches them)."""
    filt = rule.get("Filter")
    if filt is None:
        return str(rule.get("Prefix", ""))
    if "Tag" in filt:
        return None
    if "And" in filt:
        if filt["And"].get("Tags"):
            return None
        return str(filt["And"].get("Prefix", ""))
    return str(filt.get("Prefix", ""))


def _conflict(rule: dict[str, Any], prefix: str, retention_days: Iterable[int]) -> str | None:
    """Why a foreign rule would cut a share's retention short, or ``None``."""
    if rule.get("Status") != "Enabled":
        return None
    scope = _rule_prefix(rule)
    if scope is None:
        return None
    for days in retention_days:
        ours = f"{prefix}ttl-{days}d/"
        if not (ours.startswith(scope) or scope.startswith(ours)):
            continue
        exp = rule.get("Expiration") or {}
        if "Date" in exp or ("Days" in exp and int(exp["Days"]) < days):
            return f"expires objects under {ours} before their {days}-day retention"
        for tr in rule.get("Transitions") or []:
            if "Date" in tr or int(tr.get("Days", 0)) < days:
                return (f"moves objects under {ours} to {tr.get('StorageClass', '?')} before "
                        f"their {days}-day retention (links to archived objects fail)")
    return None


# --- the plan --------------------------------------------------------------------------


def plan_setup(before: BucketState, *, bucket: str, prefix: str, retention_days: Iterable[int],
               kms_key_id: str | None, require_tls: bool, https: bool,
               force: Iterable[str] = ()) -> SetupPlan:
    """What setup would write, given the bucket as it is now. Pure: no I/O."""
    forced = check_force(force)
    days = tuple(retention_days)
    created = not before.exists
    findings: list[Finding] = []

    # Policy: keep foreign statements in order; ours go last.
    policy = copy.deepcopy(before.policy) if before.policy else None
    statements: list[dict[str, Any]] = []
    if policy is not None:
        raw = policy.get("Statement", [])
        statements = [raw] if isinstance(raw, dict) else list(raw)
    foreign = [s for s in statements if not owned(s.get("Sid"))]
    ours: list[dict[str, Any]] = []
    if require_tls and https:
        ours.append(tls_statement(bucket))
    elif require_tls:
        findings.append(Finding("policy", "TLS-only deny not added: the endpoint is http://, "
                                "where it would refuse every request"))
    mine_now = [s for s in statements if owned(s.get("Sid"))]
    if mine_now == ours:
        new_policy = before.policy
    elif not foreign and not ours:
        new_policy = None
    else:
        base = policy or {"Version": "2012-10-17"}
        new_policy = {**base, "Statement": foreign + ours}

    # Lifecycle: foreign rules kept (conflicts disabled only when forced); ours replaced.
    wanted = lifecycle_rules(prefix, days)
    lifecycle: list[dict[str, Any]] = []
    changed_foreign = False
    for rule in before.lifecycle:
        if owned(rule.get("ID")):
            continue
        why = _conflict(rule, prefix, days)
        if why is None:
            lifecycle.append(rule)
            continue
        name = rule.get("ID", "(no ID)")
        if "lifecycle" in forced:
            lifecycle.append({**copy.deepcopy(rule), "Status": "Disabled"})
            changed_foreign = True
            findings.append(Finding("lifecycle", f"rule {name!r} {why}: disabled (forced)",
                                    forced=True))
        else:
            lifecycle.append(rule)
            findings.append(Finding("lifecycle", f"rule {name!r} {why}; left alone "
                                    "(--force lifecycle disables it)"))
    mine = {r.get("ID"): r for r in before.lifecycle if owned(r.get("ID"))}
    ours_current = len(mine) == len(wanted) and all(
        _covers(mine.get(w["ID"]), w) for w in wanted)
    new_lifecycle = before.lifecycle if ours_current and not changed_foreign else \
        tuple(lifecycle + wanted)

    # Bucket-wide settings: only on a bucket we create, or when forced.
    want_enc = encryption_config(kms_key_id)
    new_enc = before.encryption
    have, want = _default_sse(before.encryption), _default_sse(want_enc)
    same_enc = have.get("SSEAlgorithm") == want["SSEAlgorithm"] and _same_kms_key(
        have.get("KMSMasterKeyID"), want.get("KMSMasterKeyID"))
    if created:
        new_enc = want_enc
    elif not same_enc:
        what = "none" if not have else (
            f"{have.get('SSEAlgorithm')}" + (f" with key {have['KMSMasterKeyID']}"
                                            if have.get("KMSMasterKeyID") else ""))
        if "encryption" in forced:
            new_enc = want_enc
            findings.append(Finding("encryption", f"default encryption was {what}: replaced "
                                    "(forced)", forced=True))
        else:
            findings.append(Finding("encryption", f"default encryption is {what}; left alone "
                                    "(vaultkit's uploads set their own SSE header; "
                                    "--force encryption replaces it)"))

    new_pab = before.public_access_block
    if created:
        new_pab = dict(BLOCK_ALL)
    elif before.public_access_block != BLOCK_ALL:
        if "public-access-block" in forced:
            new_pab = dict(BLOCK_ALL)
            findings.append(Finding("public-access-block", "Block Public Access was not fully "
                                    "on: turned on (forced)", forced=True))
        else:
            findings.append(Finding("public-access-block", "Block Public Access is not fully on "
                                    "for this bucket; left alone (vaultkit's objects are never "
                                    "public; --force public-access-block turns it on)"))

    after = BucketState(exists=True, policy=new_policy, lifecycle=tuple(new_lifecycle),
                        encryption=new_enc, public_access_block=new_pab,
                        transition_minimum=before.transition_minimum)
    return SetupPlan(bucket=bucket, before=before, after=after, findings=tuple(findings))


# --- reading and writing the bucket (boto3 client in, errors converted by the caller) ----


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _read(call: Callable[[], Any], missing: str) -> Any:
    """``call()``, or ``None`` when S3 answers that the setting does not exist (a 404 with
    code ``missing``: each setting has its own)."""
    try:
        return call()
    except Exception as exc:
        if _code(exc) == missing:
            return None
        raise


def read_state(s3: Any, bucket: str) -> BucketState:
    """The bucket's current configuration; missing pieces read as ``None``/empty."""
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return BucketState(exists=False)
        raise
    policy = _read(lambda: json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
                   "NoSuchBucketPolicy")
    lifecycle = _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                      "NoSuchLifecycleConfiguration") or {}
    rules = lifecycle.get("Rules")
    minimum = lifecycle.get("TransitionDefaultMinimumObjectSize")
    enc = _read(lambda: s3.get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"], "ServerSideEncryptionConfigurationNotFoundError")
    pab = _read(lambda: s3.get_public_access_block(Bucket=bucket)[
        "PublicAccessBlockConfiguration"], "NoSuchPublicAccessBlockConfiguration")
    return BucketState(exists=True, policy=policy, lifecycle=tuple(rules or ()),
                       encryption=enc, public_access_block=pab,
                       transition_minimum=str(minimum) if minimum else None)


def apply_plan(s3: Any, plan: SetupPlan, *, region: str | None) -> SetupPlan:
    """Write the settings that change, bucket first and policy last."""
    changes = plan.changes
    after, bucket = plan.after, plan.bucket
    if "bucket" in changes:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    if "public-access-block" in changes and after.public_access_block is not None:
        s3.put_public_access_block(Bucket=bucket,
                                   PublicAccessBlockConfiguration=after.public_access_block)
    if "encryption" in changes and after.encryption is not None:
        s3.put_bucket_encryption(Bucket=bucket,
                                 ServerSideEncryptionConfiguration=after.encryption)
    if "lifecycle" in changes:
        extra: dict[str, Any] = {}
        if after.transition_minimum:
            extra["TransitionDefaultMinimumObjectSize"] = after.transition_minimum
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": list(after.lifecycle)}, **extra)
    if "policy" in changes:
        if after.policy is None:
            s3.delete_bucket_policy(Bucket=bucket)
        else:
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(after.policy))
    return replace(plan, applied=True)


__all__ = [
    "FORCE_NAMES", "OWNED_PREFIX", "TLS_SID", "BucketState", "Finding", "SetupPlan",
    "apply_plan", "check_force", "lifecycle_rules", "plan_setup", "read_state",
    "tls_statement",
]
