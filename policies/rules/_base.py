"""What every rule module shares: the policy constructors with the pack's conventions, readers for Pulumi's
camelCase property bags, and the stack-policy helpers that attach a sibling resource to its owner.

Property bags arrive wrapped in pulumi_policy's unknown-checking proxies (both under the CLI and in the offline
evaluator). Reading a value that is unknown during preview raises ``UnknownValueError``; the engine and our
evaluator turn that into an advisory "cannot check in preview". Helpers that only *group* resources use
``peek`` instead, so an unknown id never stops a verdict that does not depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, _DictProxy, _is_unknown, _ListProxy

# How the offline engine records a pulumi secret (never the value). Policies treat it as "set, and secret".
SECRET = "[secret]"  # noqa: S105 - the marker, not a secret

# Every policy accepts a justification in the pack config, so a stack that lowers an enforcement level says why
# right next to the setting (tests require it wherever a level is below mandatory).
_JUSTIFICATION = {
    "justification": {
        "type": "string",
        "description": "Why this stack uses a non-default enforcement level or parameter.",
    }
}


class Report(Protocol):
    """What the engine passes as ``report_violation`` (pulumi_policy types the urn as required; it is not)."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


ResourceCheck = Callable[[ResourceValidationArgs, Report], None]
StackCheck = Callable[[StackValidationArgs, Report], None]


def config_schema(properties: Mapping[str, dict[str, Any]] | None = None, required: list[str] | None = None):
    return PolicyConfigSchema(properties={**_JUSTIFICATION, **dict(properties or {})}, required=required)


def resource_policy(
    *,
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    validate: ResourceCheck,
    schema: PolicyConfigSchema | None = None,
    tags: list[str] | None = None,
) -> ResourceValidationPolicy:
    # Mandatory unless a stack's pack config says otherwise: a missing config entry must not soften a rule.
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=cast(Any, validate),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema or config_schema(),
        severity=severity,
        remediation_steps=remediation,
        tags=tags,
    )


def stack_policy(
    *,
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    validate: StackCheck,
    schema: PolicyConfigSchema | None = None,
    tags: list[str] | None = None,
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=cast(Any, validate),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema or config_schema(),
        severity=severity,
        remediation_steps=remediation,
        tags=tags,
    )


def knob(args: ResourceValidationArgs | StackValidationArgs, key: str, default: Any) -> Any:
    """A policy parameter from the pack config, or the schema default (the CLI fills defaults in too)."""
    value = args.get_config().get(key)
    return default if value is None else value


# ---- readers ----------------------------------------------------------------------------------------------
def get(obj: Any, *path: str | int) -> Any:
    """Nested read that returns None for missing keys/indexes; unknown values still raise (on purpose)."""
    cur = obj
    for key in path:
        if isinstance(key, int):
            if not is_list(cur) or key >= len(cur):
                return None
            cur = cur[key]
        else:
            if not isinstance(cur, Mapping) or key not in cur:
                return None
            cur = cur[key]
    return cur


def peek(obj: Any, *path: str | int) -> Any:
    """Like ``get`` but an unknown value reads as None: for grouping, never for a verdict."""
    try:
        return get(obj, *path)
    except UnknownValueError:
        return None


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_list(value: Any) -> list[Any]:
    """Lists stay lists; maxItems=1 blocks that a provider records as a bare object become one-item lists."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


def truthy(value: Any) -> bool:
    # Some provider fields (launch template `ebs.encrypted`) are strings "true"/"false".
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def falsy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "false"
    return value is False


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def is_set(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def present(obj: Any, *path: str | int) -> bool:
    """Whether a reference (key ARN, bucket name, certificate) is set. A value unknown during preview is an
    output of another resource being created, so it will be set: that is enough for "uses a customer key"."""
    try:
        return is_set(get(obj, *path))
    except UnknownValueError:
        return True


def policy_document(value: Any) -> dict[str, Any] | None:
    """IAM/S3 policy documents arrive as JSON strings (or already parsed)."""
    if value is None or value == SECRET:
        return None
    if isinstance(value, Mapping):
        return plain(value)
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def raw(value: Any) -> Any:
    """Unwrap pulumi_policy proxies into plain data WITHOUT raising: unknown values stay as their sentinels."""
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {k: raw(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [raw(v) for v in value]
    return value


def is_unknown(value: Any) -> bool:
    return _is_unknown(value)


def plain(value: Any) -> Any:
    """Copy a proxied bag into plain dicts/lists (reads every value, so unknowns raise here)."""
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if is_list(value):
        return [plain(v) for v in value]
    return value


def statements(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not doc:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


# ---- stack helpers ----------------------------------------------------------------------------------------
def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    wanted = set(types)
    return [r for r in resources if r.resource_type in wanted]


def physical_name(resource: PolicyResource, *keys: str) -> str:
    """The name a sibling's id-typed input carries under mocks (and for resources named explicitly)."""
    for key in keys:
        value = peek(resource.props, key)
        if isinstance(value, str) and value:
            return value
    return resource.name


def owner_of(
    sibling: PolicyResource,
    owners: Sequence[PolicyResource],
    prop: str,
    name_keys: tuple[str, ...],
) -> PolicyResource | None:
    """The resource among ``owners`` that ``sibling`` configures through its ``prop`` input.

    Order of evidence: the engine's property dependencies for ``prop`` (real CLI), the sibling's dependencies
    when exactly one is a candidate, the id-typed input matched against each candidate's physical name (ids
    are names for explicitly named resources), then a parent component shared with exactly one candidate.
    """
    owner_urns = {o.urn for o in owners}
    by_prop = [d for d in (sibling.property_dependencies or {}).get(prop, []) if d.urn in owner_urns]
    if len(by_prop) == 1:
        return _same(by_prop[0], owners)
    # A candidate that another input is known to carry (a BucketLogging's targetBucket) is not the owner.
    claimed = {d.urn for p, ds in (sibling.property_dependencies or {}).items() if p != prop for d in ds}
    deps = [d for d in sibling.dependencies if d.urn in owner_urns and d.urn not in claimed]
    if len(deps) == 1:
        return _same(deps[0], owners)
    ref = peek(sibling.props, prop)
    pool = [o for o in owners if o.urn in {d.urn for d in deps}] or list(owners)
    if isinstance(ref, str) and ref:
        matches = [o for o in pool if ref in {physical_name(o, *name_keys), o.name, o.urn}]
        if len(matches) == 1:
            return matches[0]
    # Last resort: a component that wraps one owner and its siblings (our SecureBucket does) names the owner.
    if sibling.parent is not None:
        same_parent = [o for o in owners if o.parent is not None and o.parent.urn == sibling.parent.urn]
        if len(same_parent) == 1:
            return same_parent[0]
    return None


def _same(ref: PolicyResource, owners: Sequence[PolicyResource]) -> PolicyResource:
    for o in owners:
        if o.urn == ref.urn:
            return o
    return ref


def refers_to(resource: PolicyResource, target: PolicyResource, prop: str, name_keys: tuple[str, ...]) -> bool:
    """Whether ``resource`` points at ``target`` through ``prop`` (dependency evidence or a matching id)."""
    by_prop = (resource.property_dependencies or {}).get(prop)
    if by_prop:
        return any(d.urn == target.urn for d in by_prop)
    ref = peek(resource.props, prop)
    names = {physical_name(target, *name_keys), target.name}
    if isinstance(ref, str) and ref:
        return ref in names or any(ref.endswith(f":{n}") or ref.endswith(f"/{n}") for n in names)
    return any(d.urn == target.urn for d in resource.dependencies)


def names_match(name: str, roles: Iterable[str]) -> bool:
    """A bucket/resource plays role R when its name is R or ends with '-R' (e.g. visionrag-prod-pages)."""
    return any(name == role or name.endswith(f"-{role}") for role in roles)
