"""deploy.yml's promotion contract for the supply chain: every stage's digests are verified (cosign, keyless, the
identity ci.yml signs with) and release-tagged before they are written; prod's canary is decided against the LIVE
outputs; after each stage's verify the repository gets a pull request recording what runs; a merged record
does not deploy again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.supply_chain.verifier import GITHUB_OIDC_ISSUER, ci_identity
from tests.delivery.test_workflows import STAGES, deploy_jobs, load, needs_of, runs, step_index, uses

PROMOTING = {"dev": ("dev", "digests-build/images.json"), "staging": ("plan-staging", "passed/digests-dev.json"),
             "prod": ("plan-prod", "passed/digests-staging.json")}  # fmt: skip


def _creds(step: dict[str, Any], var: str) -> bool:
    return uses("aws-actions/configure-aws-credentials")(step) and step["with"]["role-to-assume"] == var


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_verifies_and_tags_before_it_writes_or_plans(stage: str) -> None:
    name, images = PROMOTING[stage]
    job = deploy_jobs()[name]
    steps = job["steps"]
    promote = step_index(job, runs(f"scripts/promote.py promote --stack {stage} --images {images}"))
    assert promote >= 0
    script = steps[promote]["run"]
    assert '--certificate-identity "$SIGNER"' in script and "--public-key" not in script
    # The keyless identity ci.yml's images-release signs with; the issuer is promote.py's default (GitHub OIDC).
    assert steps[promote]["env"]["SIGNER"] == ci_identity("${{ github.repository }}")
    assert "--certificate-oidc-issuer" not in script
    # cosign installed, the promotion role assumed and ECR logged in (cosign reads the registry) before it ...
    cosign = step_index(job, uses("sigstore/cosign-installer"))
    role = step_index(job, lambda s: _creds(s, "${{ vars.AWS_ECR_PROMOTE_ROLE_ARN }}"))
    login = step_index(job, uses("aws-actions/amazon-ecr-login"))
    assert 0 <= cosign < promote and 0 <= role < login < promote
    # ... and the stage's own role (deploy in dev, read-only preview for plans) taken back after it, before planning.
    stage_role = "${{ vars.AWS_DEPLOY_ROLE_ARN }}" if stage == "dev" else "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    back = max(i for i, s in enumerate(steps) if _creds(s, stage_role))
    plan = step_index(job, lambda s: uses("pulumi/actions")(s) and s["with"].get("command") == "preview")
    assert promote < back < plan
    # Nothing writes the stage's digests without verifying them.
    assert step_index(job, runs(f"promote.py set --stack {stage}")) == -1
    assert step_index(job, runs(f"promote.py rollout --stack {stage}")) == -1


def test_the_verified_identity_is_the_workflow_that_signs() -> None:
    ci = load("ci.yml")
    assert ci["name"] == "ci" and ci["on"]["push"]["branches"] == ["main"]
    release = ci["jobs"]["images-release"]
    assert "refs/heads/main" in release["if"]
    sign = release["steps"][step_index(release, runs("cosign sign --yes"))]["run"]
    assert "--key" not in sign  # keyless: the certificate names the workflow, which is what deploy.yml verifies
    assert "--type spdxjson" in sign
    assert step_index(release, uses("actions/attest-build-provenance")) >= 0
    assert release["permissions"]["id-token"] == "write"
    assert GITHUB_OIDC_ISSUER == "https://token.actions.githubusercontent.com"


def test_prod_decides_the_canary_from_the_live_outputs() -> None:
    job = deploy_jobs()["plan-prod"]
    steps = job["steps"]
    live = step_index(job, runs("pulumi stack output --json --stack prod > build/live-prod.json"))
    promote = step_index(job, runs("scripts/promote.py promote --stack prod"))
    cli = step_index(job, lambda s: uses("pulumi/actions")(s) and "command" not in s["with"])
    assert 0 <= cli < live < promote
    assert "||" not in steps[live]["run"]  # unreadable outputs stop the deploy; they never pass for a first deploy
    assert "--live build/live-prod.json --canary-weight 10" in steps[promote]["run"]
    assert job["outputs"]["canary_image"] == "${{ steps.promote.outputs.canary_image }}"
    assert steps[promote]["id"] == "promote"
    # The rollback target is what ran, read from the same outputs.
    assert "jq '.images // {}' build/live-prod.json > build/previous-prod.json" in steps[live]["run"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_verified_stage_is_recorded_by_a_pull_request(stage: str) -> None:
    jobs = deploy_jobs()
    job = jobs[f"record-{stage}"]
    assert needs_of(job) == [stage]  # only after the stage's apply + verify (+ canary) succeeded
    assert job["runs-on"] == "ubuntu-24.04" and job["concurrency"]["group"] == f"record-{stage}"
    checkout = job["steps"][step_index(job, uses("actions/checkout"))]["with"]
    assert checkout["ref"] == "main" and checkout["persist-credentials"] is False
    download = job["steps"][step_index(job, uses("actions/download-artifact"))]["with"]
    assert download["name"] == f"digests-{stage}"
    # The stage exports digests-<stage> only after its verify: the record is what passed.
    producer = jobs[stage]
    assert step_index(producer, runs(f"python -m stacks verify {stage}")) < step_index(
        producer, runs(f"promote.py export --stack {stage}")
    )
    script = job["steps"][step_index(job, runs("gh pr create"))]
    assert script["env"]["STAGE"] == stage
    run = script["run"]
    order = [
        run.index('promote.py set --stack "$STAGE" --images "passed/digests-$STAGE.json"'),
        run.index('git diff --quiet -- "Pulumi.$STAGE.yaml"'),
        run.index('git commit -m "promote($STAGE)'),
        run.index('git push --force origin "HEAD:refs/heads/$branch"'),
        run.index("gh pr create --base main"),
    ]
    assert order == sorted(order)
    assert 'branch="promote/$STAGE"' in run and 'gh pr edit "$branch"' in run


def test_no_other_job_writes_to_the_repository() -> None:
    for name, job in deploy_jobs().items():
        if not name.startswith("record-"):
            assert job["permissions"].get("contents") in (None, "read"), name
            assert "git push" not in str(job.get("steps")), name


# ---- a merged record pull request does not deploy again ------------------------------------------------------


def _record_only_script() -> str:
    job = deploy_jobs()["digests"]
    return str(job["steps"][step_index(job, lambda s: s.get("id") == "what")]["run"])


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/visionrag-{}@sha256:{}"
STACK = """config:
  visionrag:workloads:
    api: {{image: "{api}", replicas: 2}}
    worker: {{image: "{worker}"}}
"""


def _stack(api: str, worker: str, replicas: int = 2) -> str:
    return STACK.format(api=DIGEST.format("api", api * 64), worker=DIGEST.format("worker", worker * 64)).replace(
        "replicas: 2", f"replicas: {replicas}"
    )


def _decide(tmp_path: Path, files: dict[str, str]) -> str:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "Pulumi.dev.yaml").write_text(_stack("a", "b"))
    (repo / "app.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "commit", "-qam", "change")
    out = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "GITHUB_EVENT_NAME": "workflow_run", "GITHUB_OUTPUT": str(out)}
    subprocess.run(["bash", "-euo", "pipefail", "-c", _record_only_script()], cwd=repo, env=env, check=True)
    (line,) = out.read_text().splitlines()
    return line


def test_a_record_only_merge_deploys_nothing(tmp_path: Path) -> None:
    assert _decide(tmp_path, {"Pulumi.dev.yaml": _stack("c", "d")}) == "deploy=false"


@pytest.mark.parametrize(
    "files",
    [
        {"Pulumi.dev.yaml": _stack("c", "d", replicas=3)},  # a digest AND a real config change
        {"Pulumi.dev.yaml": _stack("c", "d"), "app.py": "x = 2\n"},  # digests plus code
        {"app.py": "x = 2\n"},
    ],
    ids=["config", "code-and-digests", "code"],
)
def test_anything_else_deploys(tmp_path: Path, files: dict[str, str]) -> None:
    assert _decide(tmp_path, files) == "deploy=true"


def test_dev_waits_for_the_decision() -> None:
    jobs = deploy_jobs()
    assert jobs["dev"]["if"] == "needs.digests.outputs.deploy == 'true'"
    assert jobs["digests"]["outputs"]["deploy"] == "${{ steps.what.outputs.deploy }}"
    checkout = jobs["digests"]["steps"][step_index(jobs["digests"], uses("actions/checkout"))]["with"]
    assert checkout["fetch-depth"] == 2 and checkout["ref"] == "${{ env.DEPLOY_SHA }}"  # HEAD^ is the base
