#!/usr/bin/env python3
"""Write promoted image digests into a stack's Pulumi.<stack>.yaml, keeping everything else in the file.

The deploy workflow never rebuilds: it builds once, then carries the SAME digests dev -> staging -> prod by
exporting what a stage ran (`export`) and writing exactly that into the next stage (`set`). Only
`<repo>@sha256:<64 hex>` references are accepted: a tag can be re-pointed after it was verified, a digest cannot.

  promote.py promote --stack staging --images digests-dev.json --certificate-identity <ci.yml identity>
                                   # verify signature + attestations of every digest in ECR, find its provenance
                                   # referrer, refuse a digest outside the stage's retention window, tag them
                                   # release-<stage>-<time> (+ .sig/.att/.prov), then `set` (or, with --live,
                                   # `rollout`)
  promote.py set    --stack staging --images digests-dev.json      # {"api": "...@sha256:..", "worker": .., ..}
  promote.py export --stack staging [--out digests-staging.json]   # what the stack's file says (rollback input)
  promote.py rollout --stack prod --images digests-staging.json --live outputs-prod.json --canary-weight 10
                                   # worker/embedder now; an api image that differs from the LIVE one
                                   # (`pulumi stack output --json`) starts as a canary
  promote.py canary --stack prod --image <api digest> --weight 10  # start / raise the api canary
  promote.py canary --stack prod --clear                           # roll the canary back (weight 0, removed)
  promote.py canary --stack prod --finish                          # the canary becomes the api image

Exit codes: 0 done, 2 bad input or a refused promotion (the message names the image, the key, the value and what
is allowed). The file is written only when every value is valid (and, for `promote`, every digest verified and
tagged), so a refused promotion changes nothing.

The committed stack file can lag behind what runs (the deploy workflow opens a pull request with each stage's file
after its verify): decisions about what runs are made from the stack's live outputs, never from the file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

NAMESPACE = "visionrag"
WORKLOADS_KEY = f"{NAMESPACE}:workloads"
STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# Built image -> the workloads that run it (the snapshot CronJob runs the worker image's ops commands).
TARGETS: dict[str, tuple[str, ...]] = {
    "api": ("api",),
    "worker": ("worker", "snapshots"),
    "embedder": ("embedder",),
    "frontend": ("frontend",),
}
DIGEST_REF = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+)"
    r"@(?P<digest>sha256:[a-f0-9]{64})$"
)


class PromoteError(Exception):
    """Refused input; the message names the key, the value and the allowed values."""


def check_digest_ref(key: str, ref: Any) -> str:
    if not isinstance(ref, str) or not DIGEST_REF.match(ref):
        raise PromoteError(
            f"{key}: {ref!r} is not a digest reference; allowed: '<registry>/<repo>@sha256:<64 hex>' "
            "(no tag: promotion carries exactly what was verified)"
        )
    return ref


def stack_file(root: Path, stack: str) -> Path:
    # Any existing stack file (dev/staging/prod, or a DR copy such as prod-dr); promote never creates one.
    existing = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
    path = root / f"Pulumi.{stack}.yaml"
    if not STACK_NAME.match(stack) or not path.is_file():
        raise PromoteError(
            f"--stack: {stack!r} has no Pulumi.{stack}.yaml in {root}; allowed: {', '.join(existing) or '(none)'} "
            "(create the stack config first; promote never does)"
        )
    return path


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # digest references must stay on one line
    return yaml


def load(path: Path) -> CommentedMap:
    doc = _yaml().load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("config"), CommentedMap):
        raise PromoteError(f"{path}: expected a top-level 'config:' mapping")
    return doc


def dump(path: Path, doc: CommentedMap) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        _yaml().dump(doc, fh)
    tmp.replace(path)  # atomic: a crash never leaves half a config behind


def _workloads(doc: CommentedMap) -> CommentedMap:
    config = doc["config"]
    if WORKLOADS_KEY not in config or config[WORKLOADS_KEY] is None:
        config[WORKLOADS_KEY] = CommentedMap()
    workloads = config[WORKLOADS_KEY]
    if not isinstance(workloads, CommentedMap):
        raise PromoteError(f"config.{WORKLOADS_KEY}: expected a mapping, got {type(workloads).__name__}")
    return workloads


def read_images(path: str) -> dict[str, str]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PromoteError(f"--images: cannot read {path!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PromoteError(f"--images: {path!r} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise PromoteError(f"--images: expected a non-empty object of image -> digest reference in {path!r}")
    unknown = sorted(set(data) - set(TARGETS))
    if unknown:
        raise PromoteError(f"--images: unknown image(s) {unknown}; allowed: {', '.join(TARGETS)}")
    return {name: check_digest_ref(f"--images.{name}", ref) for name, ref in data.items()}


def set_images(doc: CommentedMap, images: Mapping[str, str]) -> dict[str, tuple[str | None, str]]:
    """Write each image into every workload that runs it; returns {workload: (old, new)}."""
    workloads = _workloads(doc)
    changes: dict[str, tuple[str | None, str]] = {}
    for image, ref in images.items():
        check_digest_ref(image, ref)
        for workload in TARGETS[image]:
            entry = workloads.get(workload)
            if entry is None:
                entry = workloads[workload] = CommentedMap()
            if not isinstance(entry, CommentedMap):
                raise PromoteError(f"config.{WORKLOADS_KEY}.{workload}: expected a mapping")
            old = entry.get("image")
            entry["image"] = ref
            changes[workload] = (None if old is None else str(old), ref)
    return changes


def export_images(doc: CommentedMap) -> dict[str, str]:
    """The digests the stack is configured to run, keyed by built image; refuses tags."""
    workloads = _workloads(doc)
    out: dict[str, str] = {}
    for image, (primary, *_rest) in TARGETS.items():
        ref = (workloads.get(primary) or {}).get("image")
        if ref is None:
            raise PromoteError(f"config.{WORKLOADS_KEY}.{primary}.image is not set; nothing to export")
        out[image] = check_digest_ref(f"config.{WORKLOADS_KEY}.{primary}.image", str(ref))
    return out


def set_canary(doc: CommentedMap, image: str, weight: int) -> None:
    check_digest_ref("--image", image)
    if not 0 <= weight <= 100:
        raise PromoteError(f"--weight: {weight} is out of range; allowed: 0..100")
    workloads = _workloads(doc)
    canary = workloads.get("canary")
    if isinstance(canary, Mapping) and canary.get("image") not in (None, image):
        raise PromoteError(
            f"--image: a canary of {canary.get('image')!r} is already running; --clear or --finish it first"
        )
    workloads["canary"] = CommentedMap([("image", image), ("weight", weight)])


def clear_canary(doc: CommentedMap) -> str | None:
    canary = _workloads(doc).pop("canary", None)
    return canary.get("image") if isinstance(canary, Mapping) else None


def finish_canary(doc: CommentedMap) -> str:
    workloads = _workloads(doc)
    canary = workloads.get("canary")
    if not isinstance(canary, Mapping) or not canary.get("image"):
        raise PromoteError(f"config.{WORKLOADS_KEY}.canary is not set; nothing to finish")
    image = check_digest_ref(f"config.{WORKLOADS_KEY}.canary.image", canary["image"])
    set_images(doc, {"api": image})
    del workloads["canary"]
    return image


def read_live(path: str) -> tuple[dict[str, str], str | None]:
    """The images and the api canary a stack RUNS, from `pulumi stack output --json` (stacks/program.py exports
    `images` and `canary`); a stack without outputs is a first deploy."""
    try:
        outputs = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromoteError(f"--live: cannot read stack outputs from {path!r} ({exc})") from None
    if not isinstance(outputs, dict):
        raise PromoteError(f"--live: {path!r} is not the JSON object `pulumi stack output --json` prints")
    images = outputs.get("images") or {}
    if not isinstance(images, dict):
        raise PromoteError(f"--live: outputs.images in {path!r} is not an object")
    live = {k: check_digest_ref(f"--live.images.{k}", v) for k, v in images.items() if k in TARGETS}
    canary = outputs.get("canary")
    return live, (check_digest_ref("--live.canary.image", canary.get("image")) if isinstance(canary, dict) else None)


def rollout(
    doc: CommentedMap, images: Mapping[str, str], canary_weight: int, live: Mapping[str, str], live_canary: str | None
) -> str | None:
    """Set every image except an api image that differs from the LIVE api, which starts as a canary beside it;
    returns the canary image or None. The stable api is written as the live one: the file may be stale (a canary
    finished after the file was committed), and trusting it would send the stable api back to an old image."""
    if live_canary is not None:
        raise PromoteError(
            f"--live: a canary of {live_canary!r} is running; the last deploy neither finished nor cleared it "
            "(promote.py canary --finish or --clear, apply, then promote again)"
        )
    api = images.get("api")
    current = live.get("api")
    rest = {k: v for k, v in images.items() if k != "api"}
    if current is None:
        # First deploy: there is no stable api for a canary to be compared against.
        set_images(doc, dict(images))
        return None
    if api is None or api == current:
        set_images(doc, {**rest, "api": current})
        return None
    set_images(doc, {**rest, "api": current})
    set_canary(doc, api, canary_weight)
    return api


def ecr_images_for(region: str) -> Any:
    """The registry access promote uses (tests replace it: moto has no GetDownloadUrlForLayer)."""
    import boto3

    from stacks.supply_chain.ecr_images import EcrImages

    return EcrImages(boto3.client("ecr", region_name=region))


def verify_and_tag(args: argparse.Namespace, images: Mapping[str, str]) -> str:
    """Verify every digest and tag it for the stage (stacks/supply_chain); returns the release tag."""
    from stacks.supply_chain.promotion import PromotionRefused, promote_digests
    from stacks.supply_chain.refs import RefError, parse_ecr_ref
    from stacks.supply_chain.verifier import GITHUB_OIDC_ISSUER, CosignCliVerifier, Verifier

    try:
        refs = [parse_ecr_ref(ref) for ref in images.values()]
    except RefError as exc:
        raise PromoteError(f"--images: {exc}") from None
    registries = {ref.registry for ref in refs}
    if len(registries) != 1:
        raise PromoteError(f"--images: {sorted(registries)}: every image must come from the one shared registry")
    registry = ecr_images_for(refs[0].region)
    verifier: Verifier
    if args.public_key:
        from stacks.supply_chain.cosign_key import KeyVerifier, load_public_key

        verifier = KeyVerifier(images=registry, public_key=load_public_key(Path(args.public_key).read_bytes()))
    elif args.certificate_identity:
        issuer = args.certificate_oidc_issuer or GITHUB_OIDC_ISSUER
        verifier = CosignCliVerifier(identity=args.certificate_identity, issuer=issuer)
    else:
        raise PromoteError("--certificate-identity (keyless, CI) or --public-key is required: nothing is unverified")
    try:
        done = promote_digests(images, stage=args.stack, when=datetime.now(UTC), registry=registry, verifier=verifier)
    except PromotionRefused as exc:
        raise PromoteError("refused, nothing tagged or written:\n  " + "\n  ".join(exc.problems)) from None
    for image, names in done.tagged.items():
        print(f"{args.stack}: {image}: tagged {', '.join(names)}")
    return done.release_tag


def _github_output(**values: str) -> None:
    if "GITHUB_OUTPUT" in os.environ:
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in values.items())


def edit_images(args: argparse.Namespace, doc: CommentedMap, images: Mapping[str, str]) -> list[str]:
    """`set`, or with --live `rollout` (an api image that differs from the live one starts as a canary), in
    memory; returns the lines to print once the file is written."""
    if getattr(args, "live", None) is None:
        return [f"{args.stack}: {w}: {old} -> {new}" for w, (old, new) in set_images(doc, images).items()]
    canary = rollout(doc, images, args.canary_weight, *read_live(args.live))
    _github_output(canary_image=canary or "")
    return [f"{args.stack}: " + (f"api canary {canary} at {args.canary_weight}%" if canary else "no api canary")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promote.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root holding Pulumi.<stack>.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    p_set = sub.add_parser("set", help="write digests into a stack's config")
    p_set.add_argument("--stack", required=True)
    p_set.add_argument("--images", required=True, help="JSON file (or '-') {api|worker|embedder|frontend: digest ref}")
    p_exp = sub.add_parser("export", help="print the digests a stack's config runs, as JSON")
    p_exp.add_argument("--stack", required=True)
    p_exp.add_argument("--out", help="write to this file instead of stdout")
    p_roll = sub.add_parser("rollout", help="set images; an api image differing from the live one is a canary")
    p_roll.add_argument("--stack", required=True)
    p_roll.add_argument("--images", required=True, help="JSON file (or '-') {api|worker|embedder|frontend: digest ref}")
    p_roll.add_argument("--live", required=True, help="`pulumi stack output --json` of the stack (what runs now)")
    p_roll.add_argument("--canary-weight", type=int, default=10, help="initial canary weight (default 10)")
    p_pro = sub.add_parser("promote", help="verify + release-tag every digest in ECR, then set (or rollout)")
    p_pro.add_argument("--stack", required=True, help="the stage promoted into (dev, staging, prod)")
    p_pro.add_argument("--images", required=True, help="JSON file (or '-') {api|worker|embedder|frontend: digest ref}")
    p_pro.add_argument("--certificate-identity", help="keyless: the signing workflow's identity (ci.yml on main)")
    p_pro.add_argument("--certificate-oidc-issuer", help="keyless: the OIDC issuer (default: GitHub Actions)")
    p_pro.add_argument("--public-key", help="key-based: cosign public key (PEM) instead of keyless")
    p_pro.add_argument("--live", help="`pulumi stack output --json` of the stack: write as `rollout` (canary)")
    p_pro.add_argument("--canary-weight", type=int, default=10, help="initial canary weight with --live")
    p_can = sub.add_parser("canary", help="start, raise, clear or finish the api canary")
    p_can.add_argument("--stack", required=True)
    mode = p_can.add_mutually_exclusive_group(required=True)
    mode.add_argument("--weight", type=int, help="percent of api traffic for the canary (needs --image)")
    mode.add_argument("--clear", action="store_true", help="remove the canary (rollback)")
    mode.add_argument("--finish", action="store_true", help="make the canary image the api image")
    p_can.add_argument("--image", help="api digest reference for the canary")
    args = parser.parse_args(argv)

    try:
        path = stack_file(args.root, args.stack)
        doc = load(path)
        if args.command in ("set", "rollout", "promote"):
            images = read_images(args.images)
            lines = edit_images(args, doc, images)  # every refusal of the edit comes before any tag
            if args.command == "promote":
                tag = verify_and_tag(args, images)
                _github_output(release_tag=tag)
                lines.append(f"{args.stack}: release {tag}")
            dump(path, doc)
            print("\n".join(lines))
        elif args.command == "export":
            text = json.dumps(export_images(doc), indent=2, sort_keys=True) + "\n"
            if args.out:
                Path(args.out).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        elif args.clear:
            was = clear_canary(doc)
            dump(path, doc)
            print(f"{args.stack}: canary cleared (was {was})")
        elif args.finish:
            image = finish_canary(doc)
            dump(path, doc)
            print(f"{args.stack}: canary finished; api now runs {image}")
        else:
            if not args.image:
                raise PromoteError("--image is required with --weight")
            set_canary(doc, args.image, args.weight)
            dump(path, doc)
            print(f"{args.stack}: canary {args.image} at {args.weight}%")
    except PromoteError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
