"""``awssm://<name or ARN>[?stage=|?version=]#key``: AWS Secrets Manager, batched.

References without ``stage``/``version`` are fetched with ``BatchGetSecretValue``,
at most 20 ids per call (the API's limit), which also keeps a large fleet's
boot under the 100 TPS batch quota rather than 20x that in single reads. The
batch needs ``secretsmanager:BatchGetSecretValue`` *in addition to*
``GetSecretValue`` on each secret; when it is refused (AccessDenied), the
chunk is re-planned as one ``GetSecretValue`` per secret, which only needs
the per-secret permission. Pinned stages/versions always use ``GetSecretValue``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ...backends import aws
from ...config import Config
from ...errors import (
    AccessDeniedError,
    InvalidReferenceError,
    NotFoundError,
    VaultkitError,
)
from ...secret import Secret
from ..refs import Reference
from ..retry import Deadline
from .base import BaseSource, Call, CallResult, Fetched

if TYPE_CHECKING:
    from ..wildcards import Expansion

BATCH_LIMIT = 20


def _fetched(item: dict[str, Any]) -> Fetched:
    if item.get("SecretString") is not None:
        value: Secret[str] | Secret[bytes] = Secret(str(item["SecretString"]))
    else:
        value = Secret(bytes(item.get("SecretBinary") or b""))
    return Fetched(value, version=item.get("VersionId"))


class SecretsManagerSource(BaseSource):
    schemes: tuple[str, ...] = ("awssm",)
    options = frozenset({"stage", "version"})

    def check_locator(self, scheme: str, locator: str, options: Mapping[str, str]) -> str:
        if not locator:
            raise InvalidReferenceError("awssm:// needs a secret name or ARN")
        if options.get("version") and options.get("stage"):
            raise InvalidReferenceError("give ?stage= or ?version=, not both")
        return unquote(locator)

    def __init__(self, *, config: Config | None = None) -> None:
        self._config = config

    @property
    def client(self) -> Any:
        return aws.client("secretsmanager", self._config)

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        batchable = [u for u in units if not u.stage and not u.version]
        single = [u for u in units if u.stage or u.version]
        calls = [Call("awssm", "BatchGetSecretValue", tuple(batchable[i:i + BATCH_LIMIT]))
                 for i in range(0, len(batchable), BATCH_LIMIT)]
        calls += [self._single(u) for u in single]
        return calls

    @staticmethod
    def _single(unit: Reference) -> Call:
        return Call("awssm", "GetSecretValue", (unit,), target=unit.locator)

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        if call.operation == "GetSecretValue":
            return super().execute(call, deadline)
        result = CallResult()
        ids = [u.locator for u in call.units]
        values: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"SecretIdList": ids}
                if token:
                    kwargs["NextToken"] = token
                with aws.aws_errors("awssm", reference=f"BatchGetSecretValue({len(ids)} ids)"):
                    resp = self.client.batch_get_secret_value(**kwargs)
                values += resp.get("SecretValues") or []
                errors += resp.get("Errors") or []
                token = resp.get("NextToken")
                if not token:
                    break
        except AccessDeniedError:
            # The batch permission is separate; per-secret reads may still be allowed.
            result.followups = [self._single(u) for u in call.units]
            return result
        by_id: dict[str, dict[str, Any]] = {}
        for item in values:
            for k in ("Name", "ARN"):
                if item.get(k):
                    by_id[str(item[k])] = item
        failed = {str(e.get("SecretId")): e for e in errors}
        for unit in call.units:
            hit = by_id.get(unit.locator)
            if hit is not None:
                result.results[unit.unit] = _fetched(hit)
            elif unit.locator in failed:
                e = failed[unit.locator]
                err: VaultkitError = aws.map_client_error(
                    str(e.get("ErrorCode") or "Unknown"), None, str(e.get("Message") or "")[:200],
                    source="awssm", reference=unit.display)
                result.results[unit.unit] = err
            else:
                # A partial ARN or an alias-like id the batch answer does not echo: ask singly.
                result.followups.append(self._single(unit))
        return result

    def expand(self, ref: Reference, deadline: Deadline) -> Expansion:
        """``ListSecrets`` filtered by name prefix, every page; each secret is one name.

        ``awssm://prod/app/*`` takes the secrets named ``prod/app/<x>``; ``/**`` also
        ``prod/app/<x>/<y>``. The values are then read with the usual batch.
        """
        from ..wildcards import Expansion, concrete, relative

        prefix = f"{ref.base}/" if ref.base else ""
        expansion = Expansion()
        kwargs: dict[str, Any] = {"IncludePlannedDeletion": False, "MaxResults": 100}
        if prefix:
            kwargs["Filters"] = [{"Key": "name", "Values": [prefix]}]
        pages = 0
        for resp in aws.pages(self.client.list_secrets, kwargs, source="awssm",
                              operation=f"ListSecrets({prefix}*)", reference=ref.display,
                              expired=lambda: deadline.expired):
            pages += 1
            for item in resp.get("SecretList") or []:
                name = str(item.get("Name") or "")
                # The name filter matches prefixes of words too; keep only what is below.
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix):]
                if not rest or ("/" in rest and ref.wildcard != "**"):
                    continue
                expansion.items.append((relative(ref.base, name),
                                        concrete(ref, name, f"awssm://{name}")))
        expansion.items.sort(key=lambda item: item[0])
        expansion.calls.append(f"awssm: ListSecrets name={prefix}* x{pages} page(s)")
        if not expansion.items and not ref.optional:
            raise NotFoundError("no secret under this prefix", source="awssm",
                                reference=ref.display)
        return expansion

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        kwargs: dict[str, Any] = {"SecretId": unit.locator}
        if unit.stage:
            kwargs["VersionStage"] = unit.stage
        if unit.version:
            kwargs["VersionId"] = unit.version
        with aws.aws_errors("awssm", reference=unit.display):
            answer: dict[str, Any] = self.client.get_secret_value(**kwargs)
        return _fetched(answer)

    def __repr__(self) -> str:
        return "SecretsManagerSource()"
