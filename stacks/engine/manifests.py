"""Kubernetes objects out of a recorded stack: plain YAML-able dicts, validated against the API schemas.

Every typed `pulumi_kubernetes` resource the program registers (`kubernetes:<group>/<version>:<Kind>`) is one
Kubernetes object; its recorded inputs are the object the provider would send, minus what the provider fills in.
They are cleaned the way a manifest is written by hand (integers not floats: the engine hands every number over as
a float; no nulls: an unset field is absent) and validated with kubernetes-validate's bundled OpenAPI schemas in
strict mode (an unknown field is an error, as `kubectl apply --validate=strict` would make it) for the Kubernetes
version the cluster runs (`cluster.kubernetesVersion`).

Not objects, and skipped: providers, Helm releases (`kubernetes:helm.sh/v3:Release`, judged through their
`values`), and the `yaml`/`kustomize` components. Kinds with no bundled schema (CRD instances) are listed under
`unchecked` (their metadata is still validated strictly), never silently passed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from infra.workloads import crd_schemas
from stacks.engine.offline import Record, RecordedResource

# kubernetes:<group>/<version>:<Kind>, where the core group is spelled "core" in the token and "" in apiVersion.
_TOKEN = re.compile(r"^kubernetes:(?P<group>[a-z0-9.-]+)/(?P<version>v[0-9a-z]+):(?P<kind>[A-Z][A-Za-z0-9]*)$")
_NOT_OBJECTS = ("helm.sh",)
_FIRST_KEYS = ("apiVersion", "kind", "metadata")


@dataclass(frozen=True)
class Manifest:
    urn: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any]

    def filename(self) -> str:
        ns = f"{self.namespace}-" if self.namespace else ""
        return f"{self.kind.lower()}-{ns}{self.name}.yaml"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.body, sort_keys=False, default_flow_style=False, width=120)


@dataclass
class ManifestReport:
    kubernetes_version: str
    schema_version: str | None
    manifests: list[Manifest] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    unchecked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "kubernetesVersion": self.kubernetes_version,
            "schemaVersion": self.schema_version,
            "count": len(self.manifests),
            "objects": [
                {"urn": m.urn, "apiVersion": m.api_version, "kind": m.kind, "name": m.name, "namespace": m.namespace}
                for m in self.manifests
            ],
            "errors": self.errors,
            "unchecked": self.unchecked,
        }


def api_version_of(token: str) -> tuple[str, str] | None:
    """'kubernetes:apps/v1:Deployment' -> ('apps/v1', 'Deployment'); None for what is not a Kubernetes object."""
    m = _TOKEN.match(token)
    if not m or m["group"] in _NOT_OBJECTS:
        return None
    group = "" if m["group"] == "core" else m["group"]
    return (f"{group}/{m['version']}" if group else m["version"], m["kind"])


def clean(value: Any) -> Any:
    """Integral floats become ints, nulls disappear (from dicts and lists)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value if v is not None]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_manifest(resource: RecordedResource) -> Manifest | None:
    parsed = api_version_of(resource.type)
    if parsed is None:
        return None
    api_version, kind = parsed
    inputs = clean(resource.inputs)
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    body["metadata"] = inputs.get("metadata") or {}
    for k, v in inputs.items():
        if k not in _FIRST_KEYS and k != "status":
            body[k] = v
    meta = body["metadata"]
    return Manifest(
        urn=resource.urn,
        api_version=api_version,
        kind=kind,
        # Without metadata.name Pulumi auto-names the object at deploy time; the resource name stands in here.
        name=str(meta.get("name") or resource.name),
        namespace=meta.get("namespace"),
        body=body,
    )


@functools.lru_cache(maxsize=8)
def _definitions(schema_dir: str) -> Registry:
    defs = kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir)
    return Resource.from_contents(defs) @ Registry()  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _validator(schema_dir: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    # Same file layout and lookup as kubernetes_validate.validate, with the parsed schemas cached: the library
    # re-reads the 1.4 MB definitions file for every object.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", schema_dir)
    registry = Resource.from_contents(schema) @ _definitions(schema_dir)
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


_OBJECT_META = {
    "$ref": "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
}


@functools.lru_cache(maxsize=8)
def _custom_validator(schema_dir: str) -> jsonschema.protocols.Validator:
    # A custom resource's own schema lives in its CRD, installed by a Helm chart at deploy time; what every
    # object shares is checked here: apiVersion/kind, a strict ObjectMeta, and a spec object.
    schema = {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {**_OBJECT_META, "required": ["name"]},
            "spec": {"type": "object"},
        },
    }
    return jsonschema.validators.Draft202012Validator(schema, registry=_definitions(schema_dir))


def schema_version_for(kubernetes_version: str) -> str:
    """The newest bundled schema version not newer than the cluster's (as kubernetes-validate picks it)."""
    want = tuple(int(p) for p in kv.major_minor(kubernetes_version).split("."))
    bundled = sorted({tuple(int(p) for p in kv.major_minor(v).split(".")) for v in kv.all_versions()})
    if want > bundled[-1]:
        raise kv.VersionNotSupportedError(version=kubernetes_version)
    usable = [v for v in bundled if v <= want]
    if not usable:
        raise kv.VersionNotSupportedError(version=kubernetes_version)
    return "{}.{}".format(*usable[-1])


def _split_problem(problem: str) -> tuple[str, str]:
    path, sep, message = problem.partition(": ")
    return (path, message) if sep else ("(root)", problem)


def validate_manifest(manifest: Manifest, schema_version: str) -> tuple[list[dict[str, Any]], bool]:
    """(errors, fully_checked). Kinds with no bundled schema (custom resources) get the common checks only."""
    schema_dir = f"v{schema_version}.0-local-strict"
    checked = True
    try:
        validator = _validator(schema_dir, manifest.kind, manifest.api_version)
    except FileNotFoundError:
        validator, checked = _custom_validator(schema_dir), False
    found = [
        (".".join(str(p) for p in err.absolute_path) or "(root)", err.message)
        for err in sorted(validator.iter_errors(manifest.body), key=lambda e: list(e.absolute_path))
    ]
    if not checked:
        # Custom resources whose CRD schema we keep (infra/workloads/crd_schemas.py) are checked as strictly.
        custom = crd_schemas.validate(manifest.body)
        if custom is not None:
            checked = True
            found += [_split_problem(problem) for problem in custom]
    errors = [
        {"urn": manifest.urn, "kind": manifest.kind, "name": manifest.name, "path": path, "message": message}
        for path, message in found
    ]
    return errors, checked


def build_manifests(record: Record, *, kubernetes_version: str | None = None) -> ManifestReport:
    version = kubernetes_version or record.config.cluster.kubernetes_version
    # URN order, as the plan's resources: registration order varies between runs (applies resolve
    # concurrently), and the plan JSON must not.
    resources = sorted(record.resources, key=lambda r: r.urn)
    manifests = [m for m in (to_manifest(r) for r in resources if r.custom) if m is not None]
    try:
        schema_version: str | None = schema_version_for(version)
    except kv.VersionNotSupportedError:
        schema_version = None
    report = ManifestReport(kubernetes_version=version, schema_version=schema_version, manifests=manifests)
    for m in manifests:
        if schema_version is None:
            report.errors.append(
                {
                    "urn": m.urn,
                    "kind": m.kind,
                    "name": m.name,
                    "path": "(root)",
                    "message": f"kubernetes-validate bundles no schemas for Kubernetes {version}",
                }
            )
            continue
        errors, checked = validate_manifest(m, schema_version)
        report.errors.extend(errors)
        if not checked:
            report.unchecked.append(
                {
                    "urn": m.urn,
                    "apiVersion": m.api_version,
                    "kind": m.kind,
                    "reason": "custom resource: no bundled schema (metadata and shape checked only)",
                }
            )
    return report


def write_manifests(manifests: Iterable[Manifest], out: Path) -> list[Path]:
    """One YAML file per object under `out` (created), plus `all.yaml` with every object as one stream."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    docs = []
    for m in manifests:
        path = out / m.filename()
        text = m.to_yaml()
        path.write_text(text)
        written.append(path)
        docs.append(text)
    (out / "all.yaml").write_text("---\n".join(docs))
    return written
