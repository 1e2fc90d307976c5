"""The offline engine: runs the real Pulumi program under recording mocks and returns what it registered.

No Pulumi CLI or provider plugin exists here, so this is how every claim about the infrastructure is proved:
the program runs exactly as under `pulumi up` (same config, same code paths, `preview=False` so applies run),
and every registration is recorded with its type, name, inputs, parent and dependencies. Secret inputs are
recorded as "[secret]", never their value. A duplicate URN is an error, as it is for the real engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as rt_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as rt_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func

from stacks.config import ConfigError, StackConfig, check_secret_keys, deep_merge, load_stack_config
from stacks.config.loader import read_yaml_file
from stacks.engine.mocks import RecordingMocks

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "visionrag"
SECRET = "[secret]"  # noqa: S105 - the marker that replaces secret values
_RUN_LOCK = threading.Lock()  # the Pulumi runtime is process-global: one program at a time


class DuplicateUrn(RuntimeError):
    pass


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    dependencies: list[str]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    provider: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict returns (a deep copy: the plan never shares a container with the record),
        # without its per-value dataclass dispatch: after _mask the values are plain JSON data.
        return {f.name: _copied(getattr(self, f.name)) for f in fields(self)}


_IMMUTABLE = (str, int, float, bool, type(None))


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


@dataclass
class Record:
    stack: str
    config: StackConfig
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"expected one {type_} named {name!r}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def children(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def to_plan(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "config": self.config.model_dump(mode="json", by_alias=True),
            # Registration order varies between runs (applies resolve concurrently); URN order keeps the plan
            # JSON byte-stable, so two previews of the same code diff to nothing.
            "resources": [r.to_dict() for r in sorted(self.resources, key=lambda r: r.urn)],
            "outputs": self.outputs,
        }


def _mask(value: Any) -> Any:
    """Replace Pulumi's secret envelopes with the marker; keep everything else as plain JSON-able data."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return "[resource]"
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return repr(value)
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the real engine: a child's type is qualified by its parent's full type chain, and the root
        # Stack's own type never appears in that chain.
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        with self._lock:
            if urn in self._seen:
                raise DuplicateUrn(f"duplicate resource URN {urn}")
            self._seen.add(urn)
        response = super().RegisterResource(request)
        inputs = _mask(rpc.deserialize_properties(request.object, keep_unknowns=True))
        state = self.resources[urn].state
        with self._lock:
            self.recorded.append(
                RecordedResource(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    dependencies=sorted(set(request.dependencies)),
                    inputs=inputs,
                    outputs=_mask(dict(state)),
                    custom=bool(request.custom),
                    provider=request.provider or None,
                )
            )
        return response


def read_stack_file(stack: str, root: Path = ROOT) -> dict[str, Any]:
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; stacks: dev, staging, prod")
    doc = read_yaml_file(stack, path) or {}
    return dict(doc.get("config") or {})


def read_project_config(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """The `config:` declarations of Pulumi.yaml (key -> {type, default, description, secret})."""
    doc = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return {k: dict(v) if isinstance(v, dict) else {"default": v} for k, v in (doc.get("config") or {}).items()}


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def apply_project_config(stack: str, values: Mapping[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """What the real CLI does before the program starts, with the same refusals (pulumi/pulumi
    pkg/workspace/config.go, mergeConfig + validateStackConfigValue):

    - a declared project-namespaced key with neither a stack value nor a `default`/`value` is missing: the CLI
      refuses the stack ("Stack 'x' is missing configuration value 'k'"), whether or not it is `secret: true`;
    - a declared default/value fills a key the stack omits, stored as plain config;
    - then every explicitly typed key declared `secret: true` must hold a `secure:` value. A plain stack value
      fails, and so does a declared default (it was stored plain): "must be encrypted as it's secret"."""
    merged = dict(values)
    problems: list[tuple[str, str]] = []
    for key, decl in sorted(read_project_config(root).items()):
        if key not in merged:
            if "default" in decl or "value" in decl:
                merged[key] = decl["default"] if "default" in decl else decl["value"]
            elif key.startswith(f"{PROJECT}:"):
                problems.append(
                    (
                        key.split(":", 1)[1],
                        f"missing: Pulumi.yaml declares it without a default; set it in Pulumi.{stack}.yaml",
                    )
                )
                continue
        if decl.get("secret") and "type" in decl and not _is_secure(merged[key]):
            problems.append(
                (
                    key.split(":", 1)[1],
                    "declared `secret: true` but holds a plain value (a plain stack value or a declared default): "
                    f"the CLI refuses the stack; set it with `pulumi config set --secret {key}`",
                )
            )
    if problems:
        raise ConfigError(stack, problems)
    return merged


def _split(stack_values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Pulumi config as the engine hands it to a program: JSON text for structured values."""
    flat: dict[str, Any] = {}
    secure: list[str] = []
    for key, value in stack_values.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.append(key)
            continue
        flat[key] = value if isinstance(value, str) else json.dumps(value)
    return flat, secure


def _entry_point(cfg: StackConfig) -> None:
    """What `pulumi up` runs (root __main__.py): stacks.program.main(), which reads its config from the engine.

    `cfg` was validated before the engine started (so a bad config registers nothing); main() reads and
    validates it again from the engine's config map, exactly as under the real CLI."""
    from stacks.program import main

    main()


def run_stack(
    stack: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    program: Callable[[StackConfig], None] | None = None,
) -> Record:
    """Run the program for `stack` under mocks. Config errors raise ConfigError before any registration."""
    values = apply_project_config(stack, deep_merge(read_stack_file(stack), overrides or {}))
    flat, secure = _split(values)
    namespace = f"{PROJECT}:"
    # `secure:` values cannot be decrypted offline: tests pass their own; the preview uses labelled stand-ins.
    # An optional secret the stack does not set stays unset (no stand-in): the program must run without it.
    secret_values = {k: f"offline-stand-in-for-{k.split(':')[-1]}" for k in secure}
    secret_values.update(secrets or {})
    flat.update(secret_values)
    own = {k[len(namespace) :]: v for k, v in flat.items() if k.startswith(namespace)}
    check_secret_keys(stack, own, secret_values)
    cfg = load_stack_config(stack, own)
    flat.setdefault("aws:region", cfg.region)

    if program is None:
        program = _entry_point

    with _RUN_LOCK, _gc_paused():
        return _run(stack, cfg, flat, sorted(secret_values), program)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the program runs; afterwards one collection, then what survived is frozen.

    A run allocates hundreds of thousands of long-lived objects (the first run imports the pulumi_aws and
    pulumi_kubernetes submodules it uses: classes and typing objects), and each full collection walks all of them
    again: with the collector on, that is about 40% of a preview's CPU time. Collecting once at the end frees the
    run's garbage (the engine's futures and resources); `gc.freeze()` then moves the survivors (modules, the
    record) out of later collections, as CPython documents for long-lived objects. Left as found when the
    caller has turned the collector off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
        gc.freeze()


def _run(
    stack: str,
    cfg: StackConfig,
    flat: dict[str, Any],
    secret_keys: list[str],
    program: Callable[[StackConfig], None],
) -> Record:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The SDK walks the Python stack on every registration to tell the engine where the resource was declared
    # (for its UI). Nothing offline reads it and it is about a fifth of the engine's CPU time.
    stack_trace = getattr(rt_resource, "_get_stack_trace", None)
    if stack_trace is not None:
        rt_resource._get_stack_trace = source_pb2.StackTrace  # type: ignore[assignment]
    try:
        rt_settings.reset_options()
        rt_settings.ROOT.set(None)
        set_all_config(flat, secret_keys)
        mocks = RecordingMocks(region=cfg.region, stack=stack)
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        root = rt_settings.get_root_resource()

        async def go() -> dict[str, Any]:
            await run_pulumi_func(lambda: program(cfg))
            exported = getattr(root, "outputs", {})
            resolved: dict[str, Any] = {}
            for k, v in exported.items():
                out = pulumi.Output.from_input(v)
                value = await out.future(with_unknowns=True)
                resolved[k] = SECRET if await out.is_secret() else _mask(value)
            return resolved

        outputs = loop.run_until_complete(go())
        return Record(
            stack=stack,
            config=cfg,
            resources=list(monitor.recorded),
            outputs=json.loads(json.dumps(outputs, default=str)),
            invokes=list(mocks.invokes),
        )
    finally:
        if stack_trace is not None:
            rt_resource._get_stack_trace = stack_trace  # type: ignore[assignment]
        rt_settings.reset_options()
        rt_settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
