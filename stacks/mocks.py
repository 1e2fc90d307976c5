"""What the offline engine answers in place of AWS and Kubernetes: realistic outputs and invoke results.

The real engine would run each provider's Create and return ids, ARNs and computed attributes. Here every resource
gets its inputs echoed back plus the computed attributes a program reads (ids, ARNs, endpoints, DNS names), so
that code which `apply`s on them runs exactly as it would in a deployment. Invokes the program makes must be
answered here: an unanswered invoke is an error (UnansweredInvoke), never a silent None.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"


class UnansweredInvoke(RuntimeError):
    pass


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _hex(n: int, *parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _module(token: str) -> tuple[str, str]:
    """'aws:s3/bucketPolicy:BucketPolicy' -> ('s3', 'bucketPolicy')."""
    pkg_mod = token.split(":")[1]
    mod, _, res = pkg_mod.partition("/")
    return mod, res or mod


OutputFactory = Callable[[str, dict[str, Any], "RecordingMocks"], dict[str, Any]]
InvokeHandler = Callable[[dict[str, Any], "RecordingMocks"], dict[str, Any]]

# Type-specific computed outputs. Add an entry when a component reads an output the generic echo doesn't give.
OUTPUT_FACTORIES: dict[str, OutputFactory] = {}
INVOKES: dict[str, InvokeHandler] = {}


def outputs_for(token: str) -> Callable[[OutputFactory], OutputFactory]:
    def deco(fn: OutputFactory) -> OutputFactory:
        OUTPUT_FACTORIES[token] = fn
        return fn

    return deco


def invoke(token: str) -> Callable[[InvokeHandler], InvokeHandler]:
    def deco(fn: InvokeHandler) -> InvokeHandler:
        INVOKES[token] = fn
        return fn

    return deco


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, *, region: str, stack: str) -> None:
        self.region = region
        self.stack = stack
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    # ---- resources -------------------------------------------------------------------------------------
    def physical_name(self, name: str, inputs: dict[str, Any]) -> str:
        for key in ("bucket", "name", "clusterName", "functionName", "repositoryName", "replicationGroupId"):
            v = inputs.get(key)
            if isinstance(v, str) and v:
                return v
        return name

    def arn(self, token: str, name: str) -> str:
        mod, res = _module(token)
        if mod == "s3":
            return f"arn:aws:s3:::{name}"
        if mod == "iam":
            return f"arn:aws:iam::{ACCOUNT_ID}:{res.lower()}/{name}"
        if mod == "kms":
            return f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{_stable_uuid(self.stack, name)}"
        return f"arn:aws:{mod}:{self.region}:{ACCOUNT_ID}:{res.lower()}/{name}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        token = args.typ
        inputs = dict(args.inputs)
        if not token.startswith("aws:"):
            state = dict(inputs)
            factory = OUTPUT_FACTORIES.get(token)
            if factory:
                state.update(factory(args.name, inputs, self))
            return f"{args.name}-id", state
        name = self.physical_name(args.name, inputs)
        state = {**inputs, "arn": self.arn(token, name), "id": name, "tagsAll": inputs.get("tags", {})}
        factory = OUTPUT_FACTORIES.get(token)
        if factory:
            state.update(factory(name, inputs, self))
        return str(state["id"]), state

    # ---- invokes ---------------------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        handler = INVOKES.get(args.token)
        if handler is None:
            raise UnansweredInvoke(
                f"the offline engine has no answer for invoke {args.token!r}; add one in stacks/mocks.py"
            )
        self.invokes.append((args.token, dict(args.args)))
        return handler(dict(args.args), self), []


# ---- invokes the program makes -------------------------------------------------------------------------
@invoke("aws:index/getAvailabilityZones:getAvailabilityZones")
def _azs(args: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    names = [f"{m.region}{s}" for s in "abcdef"]
    return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": m.region, "state": "available"}


@invoke("aws:index/getCallerIdentity:getCallerIdentity")
def _caller(args: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    return {
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/visionrag-deployer",
        "userId": "AROAOFFLINE",
        "id": ACCOUNT_ID,
    }


@invoke("aws:index/getRegion:getRegion")
def _region(args: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    region = args.get("region") or args.get("name") or m.region
    return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}


@invoke("aws:index/getPartition:getPartition")
def _partition(args: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}


def _principals(items: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not items:
        return None
    out: dict[str, Any] = {}
    for p in items:
        ids = p.get("identifiers", [])
        if p.get("type") == "*" or (ids == ["*"] and p.get("type") == "AWS"):
            return "*"  # type: ignore[return-value]
        out.setdefault(p["type"], [])
        out[p["type"]].extend(ids)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


@invoke("aws:iam/getPolicyDocument:getPolicyDocument")
def _policy_document(args: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    """Renders the statements the way the provider does, so policies can judge the JSON the program emits."""
    statements = []
    for s in args.get("statements", []):
        st: dict[str, Any] = {"Effect": s.get("effect", "Allow")}
        if s.get("sid"):
            st["Sid"] = s["sid"]
        for src, dst in (("actions", "Action"), ("notActions", "NotAction")):
            if s.get(src):
                st[dst] = s[src][0] if len(s[src]) == 1 else s[src]
        for src, dst in (("resources", "Resource"), ("notResources", "NotResource")):
            if s.get(src):
                st[dst] = s[src][0] if len(s[src]) == 1 else s[src]
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            p = _principals(s.get(src))
            if p is not None:
                st[dst] = p
        if s.get("conditions"):
            cond: dict[str, dict[str, Any]] = {}
            for c in s["conditions"]:
                vals = c["values"]
                cond.setdefault(c["test"], {})[c["variable"]] = vals[0] if len(vals) == 1 else vals
            st["Condition"] = cond
        statements.append(st)
    doc = {"Version": args.get("version", "2012-10-17"), "Statement": statements}
    text = json.dumps(doc, indent=2, sort_keys=False)
    return {"json": text, "minifiedJson": json.dumps(doc, separators=(",", ":")), "id": _hex(10, text)}


# ---- computed outputs of resources components read -----------------------------------------------------
@outputs_for("aws:kms/key:Key")
def _kms_key(name: str, inputs: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    key_id = _stable_uuid(m.stack, name)
    return {"keyId": key_id, "id": key_id}


@outputs_for("aws:s3/bucket:Bucket")
def _bucket(name: str, inputs: dict[str, Any], m: RecordingMocks) -> dict[str, Any]:
    return {
        "bucket": name,
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{m.region}.amazonaws.com",
        "region": inputs.get("region", m.region),
    }
