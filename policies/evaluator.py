"""Run the pack's validators over a recorded plan exactly as the Pulumi engine would, without the engine.

What the engine does and we mirror: every resource policy sees each resource through a
``ResourceValidationArgs`` whose props are wrapped in pulumi_policy's unknown-checking proxy; every stack policy
sees one ``StackValidationArgs`` holding ``PolicyResource`` objects with parent, dependencies and property
dependencies linked; each policy's enforcement level comes from the pack config (policy entry, then "all", then
the policy's own default), "disabled" skips it, "remediate" reports as mandatory; a validator that reads a value
unknown during preview yields an advisory "cannot check in preview"; ``not_applicable`` records nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.rules import ALL_POLICIES

LEVELS = [level.value for level in EnforcementLevel]
CONFIG_DIR = Path(__file__).resolve().parent / "config"


class PackConfigError(ValueError):
    """The pack config names an unknown policy, an unknown level, or parameters its schema refuses."""


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # "mandatory" | "advisory"
    message: str
    urn: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    violations: list[Violation] = field(default_factory=list)
    not_applicable: list[tuple[str, str | None, str]] = field(default_factory=list)  # (policy, urn, reason)
    levels: dict[str, str] = field(default_factory=dict)  # policy -> enforcement level used

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]


@dataclass(frozen=True)
class _Resolved:
    level: EnforcementLevel
    config: dict[str, Any]


def load_pack_config(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise PackConfigError(f"cannot read pack config {p}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise PackConfigError(f"pack config {p} is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise PackConfigError(f"pack config {p} must be a JSON object of policy name -> settings")
    return data


def stack_pack_config(stack: str) -> dict[str, Any]:
    """``policies/config/<stack>.json`` parsed (the file the CLI gets as --policy-pack-config)."""
    path = CONFIG_DIR / f"{stack}.json"
    if not path.exists():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise PackConfigError(f"no pack config for stack {stack!r}; known stacks: {known}")
    return load_pack_config(path)


def _level(value: Any, where: str) -> EnforcementLevel:
    if value not in LEVELS:
        raise PackConfigError(f"{where}: enforcement level {value!r} is not one of {LEVELS}")
    return EnforcementLevel(value)


def resolve_config(pack_config: Mapping[str, Any], policies: Sequence[Policy] = ALL_POLICIES) -> dict[str, _Resolved]:
    """Validate the pack config against the policies' schemas and resolve each policy's level and parameters."""
    by_name = {p.name: p for p in policies}
    unknown = [k for k in pack_config if k != "all" and k not in by_name]
    if unknown:
        raise PackConfigError(f"pack config names unknown policies {unknown}; known: {sorted(by_name)}")
    default_all = _level(pack_config["all"], "all") if "all" in pack_config else None
    resolved = {}
    for name, policy in by_name.items():
        entry = pack_config.get(name)
        level = default_all or policy.enforcement_level or EnforcementLevel.ADVISORY
        params: dict[str, Any] = {}
        if isinstance(entry, str):
            level = _level(entry, name)
        elif isinstance(entry, Mapping):
            params = {k: v for k, v in entry.items() if k != "enforcementLevel"}
            if "enforcementLevel" in entry:
                level = _level(entry["enforcementLevel"], f"{name}.enforcementLevel")
        elif entry is not None:
            raise PackConfigError(f"{name}: expected an enforcement level or an object, got {entry!r}")
        schema = policy.config_schema
        properties = dict(schema.properties) if schema else {}
        extra = sorted(set(params) - set(properties))
        if extra:
            raise PackConfigError(f"{name}: unknown parameters {extra}; allowed: {sorted(properties)}")
        for key, prop in properties.items():
            if key not in params and "default" in prop:
                params[key] = copy.deepcopy(prop["default"])
        if level != EnforcementLevel.DISABLED:
            json_schema = {
                "type": "object",
                "properties": properties,
                "required": (schema.required or []) if schema else [],
            }
            # The schemas are ours and fixed (tests check them); validating them on every call is wasted time.
            error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(json_schema).iter_errors(params))
            if error is not None:
                path = ".".join(str(p) for p in error.absolute_path) or "(policy)"
                raise PackConfigError(f"{name}.{path}: {error.message}")
        resolved[name] = _Resolved(level, params)
    return resolved


def _options(r: Mapping[str, Any]) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(r.get("protect", False)),
        ignore_changes=list(r.get("ignoreChanges") or []),
        delete_before_replace=r.get("deleteBeforeReplace"),
        aliases=list(r.get("aliases") or []),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(r.get("additionalSecretOutputs") or []),
        parent=r.get("parent"),
    )


def policy_resources(plan: Mapping[str, Any]) -> list[PolicyResource]:
    """The plan's resources as the engine hands them to stack policies (fresh proxies, links resolved)."""
    records = list(plan.get("resources") or [])
    by_urn = {r["urn"]: r for r in records}
    out: dict[str, PolicyResource] = {}
    for r in records:
        provider = None
        ref = r.get("provider") or ""
        prov = by_urn.get(ref) or by_urn.get(ref.rsplit("::", 1)[0]) if ref else None
        if prov is not None:
            provider = PolicyProviderResource(
                prov["type"],
                unknown_checking_proxy(prov.get("inputs") or {}),
                prov["urn"],
                prov.get("name", ""),
            )
        # The proxy builds its own containers, so validators never touch the plan's dicts.
        props = unknown_checking_proxy(r.get("inputs") or {})
        out[r["urn"]] = PolicyResource(
            r["type"], props, r["urn"], r.get("name", ""), _options(r), provider, None, [], {}
        )
    for r in records:
        res = out[r["urn"]]
        if r.get("parent") in out:
            res.parent = out[r["parent"]]
        res.dependencies.extend(out[d] for d in r.get("dependencies") or [] if d in out)
        prop_deps = r.get("propertyDependencies")
        if prop_deps is None:
            prop_deps = _property_dependencies(r, by_urn)
        for prop, urns in prop_deps.items():
            res.property_dependencies[prop] = [out[u] for u in urns if u in out]
    return list(out.values())


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def _property_dependencies(record: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The engine's per-property dependencies, rebuilt for plans that record only ``dependencies``.

    The engine knows which input carries which dependency's output; the offline recorder keeps the mock outputs
    instead, so an input holding a dependency's id or ARN depends on that dependency. This is what lets a stack
    policy tell the bucket a BucketLogging configures from the bucket it logs into.
    """
    deps = [by_urn[d] for d in record.get("dependencies") or [] if d in by_urn]
    handles = []
    for d in deps:
        outputs = d.get("outputs") or {}
        ids = {str(outputs[k]) for k in ("id", "arn") if isinstance(outputs.get(k), str) and outputs.get(k)}
        if ids:
            handles.append((d["urn"], ids))
    found: dict[str, list[str]] = {}
    for prop, value in (record.get("inputs") or {}).items():
        strings = _strings(value)
        urns = [urn for urn, ids in handles if ids & strings]
        if urns:
            found[prop] = urns
    return found


def _reporter(sink: list[Violation], policy: str, level: EnforcementLevel, default_urn: str | None):
    reported = "mandatory" if level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE) else "advisory"

    def report_violation(message: str, urn: str | None = None) -> None:
        if message and not isinstance(message, str):
            raise TypeError("Expected message to be a string")
        if urn is not None and not isinstance(urn, str):
            raise TypeError("Expected urn to be a string")
        # Resource policies always report against the resource being validated (as the engine does).
        sink.append(Violation(policy, reported, message, default_urn or urn or None))

    return report_violation


def evaluate(
    plan: Mapping[str, Any],
    pack_config: Mapping[str, Any],
    *,
    policies: Sequence[Policy] = ALL_POLICIES,
    stack_tags: Mapping[str, str] | None = None,
) -> Evaluation:
    resolved = resolve_config(pack_config, policies)
    resources = policy_resources(plan)
    result = Evaluation(levels={name: r.level.value for name, r in resolved.items()})
    for policy in policies:
        setting = resolved[policy.name]
        if setting.level == EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for res in resources:
                args = ResourceValidationArgs(
                    res.resource_type,
                    res.props,
                    res.urn,
                    res.name,
                    res.opts,
                    res.provider,
                    dict(setting.config),
                    stack_tags,
                )
                _run(policy, args, _reporter(result.violations, policy.name, setting.level, res.urn), result, res.urn)
        elif isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs(resources, dict(setting.config), stack_tags)
            _run(policy, stack_args, _reporter(result.violations, policy.name, setting.level, None), result, None)
    return result


def _run(policy, args, report, result: Evaluation, urn: str | None) -> None:
    try:
        policy.validate(args, report)
    except UnknownValueError as e:
        result.violations.append(Violation(policy.name, "advisory", f"cannot check in preview: {e.message}", urn))
    except _NotApplicableError as e:
        result.not_applicable.append((policy.name, urn, e.reason or ""))


def evaluate_plan(plan: Mapping[str, Any], pack_config: Mapping[str, Any]) -> list[Violation]:
    """The contract seam used by ``python -m stacks preview`` and ``python -m policies.check``."""
    return evaluate(plan, pack_config).violations
