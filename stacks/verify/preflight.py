"""Preflight: `python -m stacks preflight <stack>` checks, against the live account, what must hold before `up`.

The program cannot create these and a real `pulumi up` would fail (or hang) without them: the hosted zone exists
and is delegated, every configured image digest exists in its registry, the GPU vCPU quota covers the GPU node
group's maxSize, the model weights are in the models bucket, the stack's secrets have a current value, and the
deployer reaches the (private) cluster endpoint. The deploy workflow runs it before every `up`.

Reads the stack's config the way the program does (tier defaults + Pulumi.<stack>.yaml; nothing is registered)
and names from it. Output formats and exit codes are those of `preview`: table (default), json, markdown;
0 nothing blocks the deploy, 1 a check failed, 2 bad config or usage.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from infra.bucket_names import bucket_names
from stacks.config import StackConfig, check_secret_keys, load_stack_config
from stacks.config.loader import NAMESPACE
from stacks.engine.offline import ROOT, apply_project_config, read_stack_file
from stacks.verify.checks import CheckResult
from stacks.verify.post_deploy import render_table
from stacks.verify.preflight_checks import (
    NOT_CHECKED,
    Connector,
    Resolver,
    check_endpoint_reachable,
    check_gpu_quota,
    check_hosted_zone,
    check_images,
    check_model_weights,
    check_registry_pull,
    check_secrets,
    check_service_linked_roles,
    dig_resolver,
    tcp_connect,
)

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2


def load_config(stack: str, root: Path = ROOT) -> tuple[StackConfig, dict[str, Any]]:
    """The validated StackConfig (ConfigError on bad config) and the raw stack values, without running anything."""
    values = apply_project_config(stack, read_stack_file(stack, root), root)
    prefix = f"{NAMESPACE}:"
    flat = {
        k[len(prefix) :]: v if isinstance(v, str) else json.dumps(v)
        for k, v in values.items()
        if k.startswith(prefix) and not (isinstance(v, dict) and set(v) == {"secure"})
    }
    # A plain optional secret (llmApiKey, sentryDsn) is refused here as `up` would refuse it, not first at `up`.
    secure = {k for k, v in values.items() if isinstance(v, dict) and set(v) == {"secure"}}
    check_secret_keys(stack, flat, secure)
    return load_stack_config(stack, flat), values


def registry_owner(root: Path = ROOT) -> tuple[str, StackConfig] | None:
    """The committed stack that owns the shared registry (`registry.owner: true`) and its config."""
    from stacks.config import ConfigError

    for path in sorted(root.glob("Pulumi.*.yaml")):
        stack = path.name[len("Pulumi.") : -len(".yaml")]
        try:
            cfg, _ = load_config(stack, root)
        except ConfigError:
            continue  # a broken stack file is its own preflight's error
        if cfg.registry.owner:
            return stack, cfg
    return None


def configured_images(cfg: StackConfig) -> dict[str, str]:
    w = cfg.workloads
    images = {name: getattr(w, name).image for name in ("api", "worker", "embedder", "qdrant", "snapshots")}
    if w.frontend is not None:
        images["frontend"] = w.frontend.image
    if w.canary is not None:
        images["api-canary"] = w.canary.image
    if w.model_sync_image:
        images["model-sync"] = w.model_sync_image
    return images


def run_preflight(
    cfg: StackConfig,
    stack_values: Mapping[str, Any],
    *,
    client: Callable[..., Any],
    resolver: Resolver = dig_resolver,
    connect: Connector = tcp_connect,
    stack: str | None = None,
) -> list[CheckResult]:
    """Every check; `client(service, region=None)` returns a boto3 client (moto or Stubber in tests); `stack`
    names the stack in messages (default: its tier)."""
    prefix = cfg.physical_name()
    account = str(client("sts").get_caller_identity()["Account"])
    results = check_hosted_zone(client("route53"), cfg.edge.hosted_zone_id, cfg.edge.domain, resolver)
    results += check_images(lambda region: client("ecr", region), configured_images(cfg))
    results += check_registry_pull(account, stack or cfg.tier, cfg.registry.account_id, registry_owner)
    gpu = cfg.cluster.gpu_nodes
    results += check_gpu_quota(client("service-quotas"), client("ec2"), gpu.instance_types, gpu.max_size)
    models = bucket_names(prefix, account, cfg.region, None)["models"]
    results += check_model_weights(client("s3"), models, cfg.workloads.embedder_model)
    # A key the stack file sets must have reached its secret (the program writes it on `up`).
    required = ["llm-api-key"] if f"{NAMESPACE}:llmApiKey" in stack_values else []
    results += check_secrets(client("secretsmanager"), prefix, required)
    results += check_endpoint_reachable(client("eks"), prefix, connect)
    tags = cfg.resource_tags()
    results += check_service_linked_roles(
        client("iam"), create=cfg.cluster.create_service_linked_roles, project=tags["project"], tier=tags["tier"]
    )
    return results


# ---- rendering --------------------------------------------------------------------------------------------
def _status(r: CheckResult) -> str:
    if not r.ok:
        return "fail"
    return "skip" if r.detail.startswith(NOT_CHECKED) else "pass"


def render_json(stack: str, results: Sequence[CheckResult]) -> str:
    rows = [{**dataclasses.asdict(r), "status": _status(r)} for r in results]
    failed = sum(not r.ok for r in results)
    return json.dumps({"stack": stack, "ok": failed == 0, "failed": failed, "checks": rows}, indent=2) + "\n"


def render_markdown(stack: str, results: Sequence[CheckResult]) -> str:
    failed = [r for r in results if not r.ok]
    head = "✅ OK" if not failed else f"❌ BLOCKED: {len(failed)} check(s) failed"
    icon = {"pass": "✅", "fail": "❌", "skip": "⚠️"}
    out = [
        f"### `{stack}`: preflight",
        "",
        f"**{head}** · {len(results)} checks",
        "",
        "| | area | resource | check | detail |",
    ]
    out.append("|---|---|---|---|---|")
    for r in results:
        cells = [r.area, r.resource, r.check, r.detail]
        out.append(f"| {icon[_status(r)]} | " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def main(stack: str, fmt: str, out: TextIO, err: TextIO, *, region: str | None = None, client: Any = None) -> int:
    from stacks.config import ConfigError

    try:
        cfg, values = load_config(stack)
    except ConfigError as e:
        print(f"error: {e}", file=err)
        return EXIT_USAGE
    if client is None:
        import boto3  # local: config errors are reported without botocore's import time

        session = boto3.session.Session(region_name=region or cfg.region or os.environ.get("AWS_REGION"))

        def client(service: str, client_region: str | None = None) -> Any:
            return session.client(service, region_name=client_region or session.region_name)

    results = run_preflight(cfg, values, client=client, stack=stack)
    if fmt == "json":
        out.write(render_json(stack, results))
    elif fmt == "markdown":
        out.write(render_markdown(stack, results))
    else:
        out.write(render_table(results) + "\n")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"preflight {stack}: {len(failed)} of {len(results)} checks FAILED:", file=err)
        for r in failed:
            print(f"  - [{r.area}] {r.resource}: {r.check} ({r.detail})", file=err)
        return EXIT_BLOCKED
    out.write(f"\npreflight {stack}: OK ({len(results)} checks)\n" if fmt == "table" else "")
    return EXIT_OK
