"""JSON Schemas for the custom resources we create, so they are validated as strictly as built-in kinds.

kubernetes-validate bundles only the built-in API; these follow the CRDs' openAPIV3Schema (External Secrets
Operator `external-secrets.io/v1`, AWS Load Balancer Controller `elbv2.k8s.aws/v1beta1`) for the fields we use
and the siblings an author would plausibly reach for, with `additionalProperties: false` everywhere so a typo
(`targetGroupArn`, `secretStoreRefs`) fails here instead of being pruned silently by the API server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infra.workloads.image_admission import webhook_problems

_STR = {"type": "string", "minLength": 1}
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_PORT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "minLength": 1}]}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


_METADATA = _obj(["name", "namespace"], name=_STR, namespace=_STR, labels=_MAP, annotations=_MAP)


def _kind(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _obj(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": api_version},
        kind={"const": kind},
        metadata=_METADATA,
        spec=spec,
    )


_ESO_SA_REF = _obj(["name"], name=_STR, namespace=_STR, audiences={"type": "array", "items": _STR})
SECRET_STORE = _kind(
    "external-secrets.io/v1",
    "SecretStore",
    _obj(
        ["provider"],
        controller={"type": "string"},
        refreshInterval={"type": "integer", "minimum": 0},
        provider=_obj(
            ["aws"],
            aws=_obj(
                ["service", "region"],
                service={"enum": ["SecretsManager", "ParameterStore"]},
                region={"type": "string", "pattern": r"^[a-z]{2}(-gov)?-[a-z]+-\d$"},
                role={"type": "string"},
                auth=_obj([], jwt=_obj(["serviceAccountRef"], serviceAccountRef=_ESO_SA_REF)),
            ),
        ),
    ),
)

_REMOTE_REF = _obj(
    ["key"],
    key=_STR,
    property={"type": "string"},
    version={"type": "string"},
    conversionStrategy={"enum": ["Default", "Unicode"]},
    decodingStrategy={"enum": ["Auto", "Base64", "Base64URL", "None"]},
    metadataPolicy={"enum": ["None", "Fetch"]},
)
EXTERNAL_SECRET = _kind(
    "external-secrets.io/v1",
    "ExternalSecret",
    {
        **_obj(
            ["secretStoreRef", "target"],
            refreshInterval={"type": "string", "pattern": r"^(\d+(s|m|h))+$"},
            secretStoreRef=_obj(["name"], name=_STR, kind={"enum": ["SecretStore", "ClusterSecretStore"]}),
            target=_obj(
                ["name"],
                name=_STR,
                creationPolicy={"enum": ["Owner", "Orphan", "Merge", "None"]},
                deletionPolicy={"enum": ["Delete", "Merge", "Retain"]},
                immutable={"type": "boolean"},
                template=_obj(
                    [],
                    engineVersion={"enum": ["v1", "v2"]},
                    type={"type": "string"},
                    data=_MAP,
                    metadata=_obj([], labels=_MAP, annotations=_MAP),
                ),
            ),
            data={"type": "array", "items": _obj(["secretKey", "remoteRef"], secretKey=_STR, remoteRef=_REMOTE_REF)},
            dataFrom={"type": "array", "items": _obj([], extract=_REMOTE_REF)},
        ),
        # Something must be fetched.
        "anyOf": [{"required": ["data"]}, {"required": ["dataFrom"]}],
    },
)

_PEER = {
    "oneOf": [
        _obj(["ipBlock"], ipBlock=_obj(["cidr"], cidr=_STR)),
        _obj(["securityGroup"], securityGroup=_obj(["groupID"], groupID=_STR)),
    ]
}
TARGET_GROUP_BINDING = _kind(
    "elbv2.k8s.aws/v1beta1",
    "TargetGroupBinding",
    _obj(
        ["serviceRef", "targetGroupARN"],
        targetGroupARN={"type": "string", "pattern": r"^arn:aws[a-z-]*:elasticloadbalancing:"},
        targetType={"enum": ["instance", "ip"]},
        serviceRef=_obj(["name", "port"], name=_STR, port=_PORT),
        ipAddressType={"enum": ["ipv4", "ipv6"]},
        vpcID={"type": "string"},
        networking=_obj(
            [],
            ingress={
                "type": "array",
                "items": _obj(
                    ["from", "ports"],
                    **{
                        "from": {"type": "array", "minItems": 1, "items": _PEER},
                        "ports": {
                            "type": "array",
                            "items": _obj([], protocol={"enum": ["TCP", "UDP"]}, port=_PORT),
                        },
                    },
                ),
            },
        ),
    ),
)

# policy-controller's ClusterImagePolicy: not hand-written but the CRD's own openAPIV3Schema (v1beta1) at the pinned
# chart version, kept byte for byte under policies/charts/ (README there), made strict the way the API server's
# pruning makes it silent: every object that lists its properties refuses others, except where the CRD says
# x-kubernetes-preserve-unknown-fields. Cluster-scoped: metadata has a name and no namespace.
CIP_CRD = Path(__file__).resolve().parents[2] / "policies" / "charts" / "policy-controller-0.10.6" / "crds"


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if k != "description"}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def crd_version_schema(path: Path, version: str) -> dict[str, Any]:
    """The openAPIV3Schema of one served version of a CRD file (Helm's `{{ ... }}` placeholders blanked)."""
    text = re.sub(r"\{\{[^}]*\}\}", "x", path.read_text(encoding="utf-8"))
    crd = yaml.safe_load(text)
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served"):
            return dict(v["schema"]["openAPIV3Schema"])
    raise ValueError(f"{path.name}: no served version {version!r}")


_CIP = crd_version_schema(CIP_CRD / "clusterimagepolicy.yaml", "v1beta1")
CLUSTER_IMAGE_POLICY = _obj(
    ["apiVersion", "kind", "metadata", "spec"],
    apiVersion={"const": "policy.sigstore.dev/v1beta1"},
    kind={"const": "ClusterImagePolicy"},
    metadata=_obj(["name"], name=_STR, labels=_MAP, annotations=_MAP),
    spec=_strict(_CIP["properties"]["spec"]),
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("policy.sigstore.dev/v1beta1", "ClusterImagePolicy"): CLUSTER_IMAGE_POLICY,
    ("external-secrets.io/v1", "SecretStore"): SECRET_STORE,
    ("external-secrets.io/v1", "ExternalSecret"): EXTERNAL_SECRET,
    ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"): TARGET_GROUP_BINDING,
}


def validate(body: dict[str, Any]) -> list[str] | None:
    """Errors ('path: message') for a custom resource we know, or None when its kind has no schema here."""
    schema = SCHEMAS.get((str(body.get("apiVersion")), str(body.get("kind"))))
    if schema is None:
        return None
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
    if schema is CLUSTER_IMAGE_POLICY and not errors:
        # What the CRD cannot say and policy-controller's validating webhook refuses.
        errors = webhook_problems(body["spec"])
    return errors
