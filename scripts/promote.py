#!/usr/bin/env python3
"""Write promoted image digests into a stack's Pulumi.<stack>.yaml, keeping everything else in the file.

The deploy workflow never rebuilds: it builds once, then carries the SAME digests dev -> staging -> prod by
exporting what a stage ran (`export`) and writing exactly that into the next stage (`set`). Only
`<repo>@sha256:<64 hex>` references are accepted: a tag can be re-pointed after it was verified, a digest cannot.

  promote.py set    --stack staging --images digests-dev.json      # {"api": "...@sha256:..", "worker": .., ..}
  promote.py export --stack staging [--out digests-staging.json]   # what the stack runs now (also: rollback input)
  promote.py rollout --stack prod --images digests-staging.json --canary-weight 10
                                   # worker/embedder now; a changed api image starts as a canary
  promote.py canary --stack prod --image <api digest> --weight 10  # start / raise the api canary
  promote.py canary --stack prod --clear                           # roll the canary back (weight 0, removed)
  promote.py canary --stack prod --finish                          # the canary becomes the api image

Exit codes: 0 done, 2 bad input (message names the key, the value and what is allowed). The file is written only
when every value is valid, so a refused promotion changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
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


def rollout(doc: CommentedMap, images: Mapping[str, str], canary_weight: int) -> str | None:
    """Set every image except a CHANGED api image, which starts as a canary; returns the canary image or None."""
    workloads = _workloads(doc)
    api = images.get("api")
    current = (workloads.get("api") or {}).get("image")
    rest = {k: v for k, v in images.items() if k != "api"}
    if api is None or api == current:
        set_images(doc, {**rest, **({"api": api} if api else {})})
        return None
    if current is None:
        # First deploy: there is no stable api for a canary to be compared against.
        set_images(doc, dict(images))
        return None
    set_images(doc, rest)
    set_canary(doc, api, canary_weight)
    return api


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
    p_roll = sub.add_parser("rollout", help="set images; a changed api image starts as a canary")
    p_roll.add_argument("--stack", required=True)
    p_roll.add_argument("--images", required=True, help="JSON file (or '-') {api|worker|embedder|frontend: digest ref}")
    p_roll.add_argument("--canary-weight", type=int, default=10, help="initial canary weight (default 10)")
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
        if args.command == "set":
            changes = set_images(doc, read_images(args.images))
            dump(path, doc)
            for workload, (old, new) in changes.items():
                print(f"{args.stack}: {workload}: {old} -> {new}")
        elif args.command == "rollout":
            canary = rollout(doc, read_images(args.images), args.canary_weight)
            dump(path, doc)
            print(f"{args.stack}: " + (f"api canary {canary} at {args.canary_weight}%" if canary else "no api canary"))
            if "GITHUB_OUTPUT" in os.environ:
                with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
                    fh.write(f"canary_image={canary or ''}\n")
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
