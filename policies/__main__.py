"""Pulumi CLI entry point of the policy pack. It only builds the PolicyPack (which starts the analyzer server).

`pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json` runs this file with the
pack directory as working directory and first on sys.path, so the `policies` package may not be importable by
name; load it from this directory under that name so the rule modules' absolute imports resolve either way.
Never import this module from code or tests: constructing PolicyPack blocks serving gRPC.
"""

import importlib.util
import sys
from pathlib import Path

if "policies" not in sys.modules:
    _here = Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location(
        "policies", _here / "__init__.py", submodule_search_locations=[str(_here)]
    )
    assert _spec is not None and _spec.loader is not None
    _package = importlib.util.module_from_spec(_spec)
    sys.modules["policies"] = _package
    _spec.loader.exec_module(_package)

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.rules import ALL_POLICIES

PolicyPack(
    name="visionrag-policies",
    description="visionrag guardrails: private encrypted storage, locked-down EKS and edge, hardened workloads, "
    "no plaintext secrets, cost within budget.",
    # Per-policy defaults are mandatory; policies/config/<stack>.json sets each stack's levels and parameters.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
