"""scripts/promote.py: digests only, exact carry-over between stages, nothing else in the file touched."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REG = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64

STAGING = f"""\
# Overrides only: defaults come from stacks/config/tiers.py (tier "staging").
config:
  aws:region: us-east-1
  visionrag:region: us-east-1 # keep in step with aws:region
  visionrag:edge:
    domain: staging.visionrag.example.com
  visionrag:workloads:
    allowedOrigins: ["https://staging.visionrag.example.com"]
    api: {{image: "{REG}/visionrag-api@sha256:{"a" * 64}", replicas: 2}}
    worker: {{image: "{REG}/visionrag-worker@sha256:{"b" * 64}"}}
    embedder: {{image: "{REG}/visionrag-embedder@sha256:{"c" * 64}"}}
    snapshots: {{image: "{REG}/visionrag-worker@sha256:{"b" * 64}"}}
    frontend: {{image: "{REG}/visionrag-frontend@sha256:{"e" * 64}"}}
    qdrant: {{image: "docker.io/qdrant/qdrant@sha256:{"d" * 64}"}}
  visionrag:llmApiKey:
    secure: AAABAOfflinePlaceholder
"""


def _load_promote() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promote", ROOT / "scripts" / "promote.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


promote = _load_promote()


def images(**over: str) -> dict[str, str]:
    base = {"api": f"{REG}/visionrag-api@{D1}", "worker": f"{REG}/visionrag-worker@{D2}"}
    base["embedder"] = f"{REG}/visionrag-embedder@{D3}"
    base["frontend"] = f"{REG}/visionrag-frontend@{D4}"
    return {**base, **over}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.staging.yaml").write_text(STAGING)
    (tmp_path / "Pulumi.prod.yaml").write_text(STAGING.replace("staging", "prod"))
    return tmp_path


def run(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "promote.py"), "--root", str(root), *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
    )


def config(root: Path, stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())["config"])


def write_images(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "images.json"
    path.write_text(json.dumps(data))
    return path


def test_set_writes_digests_into_every_workload_that_runs_the_image(root: Path) -> None:
    imgs = images()
    assert (
        promote.main(["--root", str(root), "set", "--stack", "staging", "--images", str(write_images(root, imgs))]) == 0
    )

    w = config(root, "staging")["visionrag:workloads"]
    assert w["api"]["image"] == imgs["api"]
    assert w["worker"]["image"] == imgs["worker"]
    assert w["snapshots"]["image"] == imgs["worker"]  # the snapshot job runs the worker image
    assert w["embedder"]["image"] == imgs["embedder"]


def test_set_keeps_everything_else_byte_for_byte(root: Path) -> None:
    before = (root / "Pulumi.staging.yaml").read_text()
    assert (
        promote.main(["--root", str(root), "set", "--stack", "staging", "--images", str(write_images(root, images()))])
        == 0
    )
    after = (root / "Pulumi.staging.yaml").read_text()

    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    # Exactly the five image lines changed; comments, the secure value, qdrant's image and replicas survive.
    assert len(changed) == 5
    assert all("image:" in a and "image:" in b for a, b in changed)
    assert "# keep in step with aws:region" in after
    assert "secure: AAABAOfflinePlaceholder" in after
    cfg = config(root, "staging")
    assert cfg["visionrag:workloads"]["api"]["replicas"] == 2
    assert cfg["visionrag:workloads"]["qdrant"]["image"].endswith("d" * 64)
    assert cfg["visionrag:edge"] == {"domain": "staging.visionrag.example.com"}


@pytest.mark.parametrize(
    "bad",
    [
        f"{REG}/visionrag-api:1.2.3",
        f"{REG}/visionrag-api:latest",
        f"{REG}/visionrag-api:1.2.3@{D1}",  # a tag beside the digest invites reading the tag
        f"{REG}/visionrag-api@sha256:{'1' * 63}",
        f"{REG}/visionrag-api@sha256:{'G' * 64}",
        f"visionrag-api@{D1}",  # no registry: would resolve against Docker Hub
        "",
    ],
)
def test_set_rejects_anything_but_a_digest_and_writes_nothing(
    root: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    path = write_images(root, images(api=bad))
    assert promote.main(["--root", str(root), "set", "--stack", "prod", "--images", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--images.api" in err and "sha256:<64 hex>" in err
    assert (root / "Pulumi.prod.yaml").read_text() == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"qdrant": f"{REG}/x@{D1}"}, "unknown image(s) ['qdrant']; allowed: api, worker, embedder, frontend"),
        ({}, "non-empty object"),
        (["api"], "non-empty object"),
    ],
)
def test_set_rejects_bad_image_files(root: Path, data: Any, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote.main(["--root", str(root), "set", "--stack", "prod", "--images", str(write_images(root, data))]) == 2
    assert message in capsys.readouterr().err


def test_unknown_or_missing_stack_is_refused(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_images(root, images()))
    assert promote.main(["--root", str(root), "set", "--stack", "qa", "--images", path]) == 2
    assert "'qa' has no Pulumi.qa.yaml" in capsys.readouterr().err
    assert promote.main(["--root", str(root), "set", "--stack", "dev", "--images", path]) == 2
    assert "allowed: prod, staging" in capsys.readouterr().err
    assert not (root / "Pulumi.dev.yaml").exists()
    assert promote.main(["--root", str(root), "set", "--stack", "../prod", "--images", path]) == 2


def test_export_then_set_carries_the_exact_digests_to_the_next_stage(root: Path) -> None:
    imgs = images()
    assert run(root, "set", "--stack", "staging", "--images", "-", stdin=json.dumps(imgs)).returncode == 0

    exported = run(root, "export", "--stack", "staging")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == imgs

    done = run(root, "set", "--stack", "prod", "--images", "-", stdin=exported.stdout)
    assert done.returncode == 0, done.stderr
    assert f"prod: api: {REG}/visionrag-api@sha256:{'a' * 64} -> {imgs['api']}" in done.stdout
    assert {k: config(root, "prod")["visionrag:workloads"][k]["image"] for k in imgs} == imgs


def test_export_refuses_a_tagged_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  visionrag:workloads:\n"
        f"    api: {{image: {REG}/visionrag-api:0.1.0}}\n"
        f"    worker: {{image: {REG}/visionrag-worker:0.1.0}}\n"
        f"    embedder: {{image: {REG}/visionrag-embedder:0.1.0}}\n"
    )
    assert promote.main(["--root", str(tmp_path), "export", "--stack", "dev"]) == 2
    assert "visionrag:workloads.api.image" in capsys.readouterr().err


def test_rollback_is_a_set_of_the_previously_exported_digests(root: Path, tmp_path: Path) -> None:
    previous = tmp_path / "previous.json"
    assert promote.main(["--root", str(root), "export", "--stack", "prod", "--out", str(previous)]) == 0
    assert (
        promote.main(["--root", str(root), "set", "--stack", "prod", "--images", str(write_images(root, images()))])
        == 0
    )
    assert promote.main(["--root", str(root), "set", "--stack", "prod", "--images", str(previous)]) == 0
    assert (root / "Pulumi.prod.yaml").read_text() == STAGING.replace("staging", "prod")


def test_canary_start_raise_finish(root: Path) -> None:
    new = f"{REG}/visionrag-api@{D1}"
    assert run(root, "canary", "--stack", "prod", "--image", new, "--weight", "10").returncode == 0
    w = config(root, "prod")["visionrag:workloads"]
    assert w["canary"] == {"image": new, "weight": 10}
    assert w["api"]["image"].endswith("a" * 64)  # the stable deployment keeps the old digest

    assert run(root, "canary", "--stack", "prod", "--image", new, "--weight", "50").returncode == 0
    assert config(root, "prod")["visionrag:workloads"]["canary"]["weight"] == 50

    assert run(root, "canary", "--stack", "prod", "--finish").returncode == 0
    w = config(root, "prod")["visionrag:workloads"]
    assert "canary" not in w
    assert w["api"]["image"] == new


def test_canary_clear_is_the_rollback(root: Path) -> None:
    before = config(root, "prod")
    new = f"{REG}/visionrag-api@{D1}"
    assert run(root, "canary", "--stack", "prod", "--image", new, "--weight", "25").returncode == 0
    cleared = run(root, "canary", "--stack", "prod", "--clear")
    assert cleared.returncode == 0
    assert new in cleared.stdout
    assert config(root, "prod") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", f"{REG}/visionrag-api:2.0.0", "--weight", "10"], "--image"),
        (["--image", f"{REG}/visionrag-api@{D1}", "--weight", "101"], "allowed: 0..100"),
        (["--weight", "10"], "--image is required"),
        (["--finish"], "nothing to finish"),
    ],
)
def test_canary_refusals(root: Path, args: list[str], message: str) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    res = run(root, "canary", "--stack", "prod", *args)
    assert res.returncode == 2
    assert message in res.stderr
    assert (root / "Pulumi.prod.yaml").read_text() == before


def test_a_second_canary_must_wait_for_the_first(root: Path) -> None:
    assert (
        run(root, "canary", "--stack", "prod", "--image", f"{REG}/visionrag-api@{D1}", "--weight", "10").returncode == 0
    )
    res = run(root, "canary", "--stack", "prod", "--image", f"{REG}/visionrag-api@{D2}", "--weight", "10")
    assert res.returncode == 2
    assert "already running" in res.stderr


def test_the_promoted_file_still_validates_as_stack_config(tmp_path: Path) -> None:
    """The real Pulumi.prod.yaml, promoted, passes the foundation's config validation (digests-only tier)."""
    real = ROOT / "Pulumi.prod.yaml"
    if not real.exists():
        pytest.fail("Pulumi.prod.yaml is missing from the project root")
    shutil.copy(real, tmp_path / "Pulumi.prod.yaml")
    assert (
        promote.main(
            ["--root", str(tmp_path), "set", "--stack", "prod", "--images", str(write_images(tmp_path, images()))]
        )
        == 0
    )

    from stacks.config import load_stack_config

    raw = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("visionrag:")}
    cfg = load_stack_config("prod", values)
    assert cfg.workloads.api.image == images()["api"]
    assert cfg.workloads.snapshots.image == images()["worker"]


def live_outputs(tmp_path: Path, root: Path, stack: str = "prod", canary: Any = None) -> str:
    """`pulumi stack output --json` of a stack that runs exactly what its file says (unless a test edits it)."""
    w = config(root, stack)["visionrag:workloads"]
    path = tmp_path / f"outputs-{stack}.json"
    running = {k: w[k]["image"] for k in ("api", "worker", "embedder", "frontend")}
    path.write_text(json.dumps({"images": running, "canary": canary, "tier": stack}))
    return str(path)


def test_rollout_sends_a_changed_api_image_through_the_canary(root: Path, tmp_path: Path) -> None:
    before = config(root, "prod")["visionrag:workloads"]
    imgs = images()
    out = tmp_path / "gh_output"
    live = live_outputs(tmp_path, root)
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "promote.py"),
            "--root",
            str(root),
            "rollout",
            "--stack",
            "prod",
            "--images",
            "-",
            "--live",
            live,
            "--canary-weight",
            "5",
        ],
        capture_output=True,
        text=True,
        input=json.dumps(imgs),
        check=False,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(out)},
    )
    assert res.returncode == 0, res.stderr
    w = config(root, "prod")["visionrag:workloads"]
    assert w["api"]["image"] == before["api"]["image"]  # stable api untouched until the canary finishes
    assert w["canary"] == {"image": imgs["api"], "weight": 5}
    assert w["worker"]["image"] == imgs["worker"] and w["embedder"]["image"] == imgs["embedder"]
    assert out.read_text() == f"canary_image={imgs['api']}\n"


def test_rollout_without_an_api_change_needs_no_canary(root: Path, tmp_path: Path) -> None:
    current = config(root, "prod")["visionrag:workloads"]["api"]["image"]
    path = write_images(root, images(api=current))
    live = live_outputs(tmp_path, root)
    assert promote.main(["--root", str(root), "rollout", "--stack", "prod", "--images", str(path), "--live", live]) == 0
    w = config(root, "prod")["visionrag:workloads"]
    assert "canary" not in w
    assert w["worker"]["image"] == images()["worker"]


def test_rollout_refuses_tags(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    path = write_images(root, images(worker=f"{REG}/visionrag-worker:2.0.0"))
    live = live_outputs(tmp_path, root)
    assert promote.main(["--root", str(root), "rollout", "--stack", "prod", "--images", str(path), "--live", live]) == 2
    assert "--images.worker" in capsys.readouterr().err
    assert (root / "Pulumi.prod.yaml").read_text() == before


# ---- the committed file lags behind what runs: rollout decides from the live outputs -------------------------


def _rollout(root: Path, imgs: dict[str, str], live: str) -> int:
    path = write_images(root, imgs)
    return int(promote.main(["--root", str(root), "rollout", "--stack", "prod", "--images", str(path), "--live", live]))


def test_a_finished_canary_is_not_reverted_by_a_stale_committed_file(root: Path, tmp_path: Path) -> None:
    """Reproduces the bug: prod's canary of NEW finished (the stack runs NEW), the committed file still says OLD.
    The next rollout of the same api (only the worker changed) must keep NEW, not make OLD the stable api again
    behind a 10% canary of NEW."""
    old = config(root, "prod")["visionrag:workloads"]["api"]["image"]
    new = f"{REG}/visionrag-api@{D1}"
    live = tmp_path / "outputs.json"
    live.write_text(json.dumps({"images": {**images(), "api": new}, "canary": None}))
    imgs = images(worker=f"{REG}/visionrag-worker@sha256:{'7' * 64}")
    assert imgs["api"] == new

    assert _rollout(root, imgs, str(live)) == 0

    w = config(root, "prod")["visionrag:workloads"]
    assert w["api"]["image"] == new != old
    assert "canary" not in w
    assert w["worker"]["image"] == imgs["worker"]


def test_a_newer_api_canaries_against_the_live_api_not_the_file(root: Path, tmp_path: Path) -> None:
    live_api = f"{REG}/visionrag-api@{D1}"
    newer = f"{REG}/visionrag-api@sha256:{'8' * 64}"
    live = tmp_path / "outputs.json"
    live.write_text(json.dumps({"images": {**images(), "api": live_api}}))

    assert _rollout(root, images(api=newer), str(live)) == 0

    w = config(root, "prod")["visionrag:workloads"]
    assert w["api"]["image"] == live_api  # the stable Deployment keeps what runs, not the file's older digest
    assert w["canary"] == {"image": newer, "weight": 10}


def test_rollout_refuses_while_a_canary_is_live(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    stuck = f"{REG}/visionrag-api@{D2}"
    live = live_outputs(tmp_path, root, canary={"image": stuck, "weight": 25})
    assert _rollout(root, images(), live) == 2
    err = capsys.readouterr().err
    assert f"a canary of {stuck!r} is running" in err
    assert (root / "Pulumi.prod.yaml").read_text() == before


def test_a_stack_without_outputs_is_a_first_deploy(root: Path, tmp_path: Path) -> None:
    live = tmp_path / "outputs.json"
    live.write_text("{}")
    assert _rollout(root, images(), str(live)) == 0
    w = config(root, "prod")["visionrag:workloads"]
    assert w["api"]["image"] == images()["api"] and "canary" not in w


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "cannot read stack outputs"),
        ("[]", "is not the JSON object"),
        (json.dumps({"images": {"api": f"{REG}/visionrag-api:1.0"}}), "--live.images.api"),
    ],
)
def test_unusable_live_outputs_are_refused(
    root: Path, tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (root / "Pulumi.prod.yaml").read_text()
    live = tmp_path / "outputs.json"
    live.write_text(text)
    assert _rollout(root, images(), str(live)) == 2
    assert message in capsys.readouterr().err
    assert (root / "Pulumi.prod.yaml").read_text() == before


def test_rollout_without_live_outputs_is_a_usage_error(root: Path) -> None:
    res = run(root, "rollout", "--stack", "prod", "--images", "-", stdin=json.dumps(images()))
    assert res.returncode == 2 and "--live" in res.stderr


def test_the_program_exports_what_rollout_reads(record_of: Any) -> None:
    """The live side of the contract: `pulumi stack output --json` of the real program holds `images` and `canary`
    in the shape read_live accepts, equal to what the stack's config runs."""
    new = f"{REG}/visionrag-api@{D1}"
    plain = record_of("prod").outputs
    live, canary = _parse_outputs(plain)
    assert canary is None
    assert live == promote.export_images(promote.load(ROOT / "Pulumi.prod.yaml"))

    with_canary = record_of("prod", overrides={"visionrag:workloads": {"canary": {"image": new, "weight": 25}}})
    assert with_canary.outputs["canary"] == {"image": new, "weight": 25}
    assert _parse_outputs(with_canary.outputs)[1] == new


def _parse_outputs(outputs: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(outputs, fh)
    try:
        return promote.read_live(fh.name)  # type: ignore[no-any-return]
    finally:
        Path(fh.name).unlink()
