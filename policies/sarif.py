"""SARIF 2.1.0 for policy violations, so code scanning annotates pull requests.

Every pack policy becomes a rule (description, remediation as help, severity as GitHub's security-severity);
each violation a result at the stack's Pulumi.<stack>.yaml (the file a reviewer changes to fix it), with the
resource URN as its logical location and a fingerprint stable across runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from pulumi_policy import Policy, Severity

from policies.evaluator import Violation
from policies.rules import ALL_POLICIES, DOMAIN_OF

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
PACK_NAME = "visionrag-policies"
PACK_VERSION = "0.1.0"
# GitHub maps security-severity to critical (>= 9.0), high (7.0-8.9), medium (4.0-6.9), low (< 4.0).
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0"}
_LEVEL = {"mandatory": "error", "advisory": "warning"}


def _rule(policy: Policy) -> dict[str, Any]:
    severity = policy.severity or Severity.MEDIUM
    return {
        "id": policy.name,
        "name": "".join(part.capitalize() for part in policy.name.split("-")),
        "shortDescription": {"text": policy.description},
        "fullDescription": {"text": policy.description},
        "help": {"text": policy.remediation_steps or policy.description},
        "defaultConfiguration": {"level": "error"},
        "properties": {
            # SARIF wants tags unique; a policy's domain often repeats among its own tags.
            "tags": list(dict.fromkeys(["security", DOMAIN_OF.get(policy.name, "policy"), *(policy.tags or [])])),
            "security-severity": _SECURITY_SEVERITY[severity],
            "severity": severity.value,
        },
    }


def _fingerprint(v: Violation) -> str:
    return hashlib.sha256(f"{v.policy}\0{v.urn or ''}\0{v.message}".encode()).hexdigest()


def to_sarif(
    violations: Iterable[Violation],
    *,
    artifact_uri: str,
    policies: Sequence[Policy] = ALL_POLICIES,
    invocation_ok: bool = True,
) -> dict[str, Any]:
    rules = [_rule(p) for p in policies]
    index = {p.name: i for i, p in enumerate(policies)}
    results = []
    for v in violations:
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": artifact_uri}, "region": {"startLine": 1}}
        }
        if v.urn:
            location["logicalLocations"] = [
                {"fullyQualifiedName": v.urn, "name": v.urn.rsplit("::", 1)[-1], "kind": "resource"}
            ]
        result: dict[str, Any] = {
            "ruleId": v.policy,
            "level": _LEVEL.get(v.level, "note"),
            "message": {"text": v.message},
            "locations": [location],
            "partialFingerprints": {"policyViolation/v1": _fingerprint(v)},
            "properties": {"enforcementLevel": v.level},
        }
        if v.policy in index:
            result["ruleIndex"] = index[v.policy]
        results.append(result)
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": PACK_NAME,
                        "version": PACK_VERSION,
                        "informationUri": "https://www.pulumi.com/docs/iac/packages-and-automation/crossguard/",
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": invocation_ok}],
                "results": results,
            }
        ],
    }
