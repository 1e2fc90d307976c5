"""Property tests: for generated inputs, a rule's verdict matches its definition (not just the fixtures)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.evaluator import evaluate_plan
from tests.policies.policy_plans import PlanBuilder

FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def only(policy: str, **params) -> dict:
    return {"all": "disabled", policy: {"enforcementLevel": "mandatory", **params}}


@settings(max_examples=40, deadline=None)
@given(st.fixed_dictionaries({f: st.sampled_from([True, False, None, "true"]) for f in FLAGS}))
def test_public_access_block_fires_iff_a_flag_is_not_true(flags) -> None:
    b = PlanBuilder()
    bucket = b.add("aws:s3/bucket:Bucket", "b", {"bucket": "b"})
    b.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "pab",
        {"bucket": "b", **{k: v for k, v in flags.items() if v is not None}},
        deps=[bucket],
    )
    fired = bool(evaluate_plan(b.plan(), only("s3-public-access-block")))
    assert fired == any(v not in (True, "true") for v in flags.values())


_name = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
_tag = st.one_of(st.none(), st.just("latest"), st.from_regex(r"v?[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True))
_digest = st.one_of(st.none(), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
_registry = st.sampled_from(["", "docker.io/", "123456789012.dkr.ecr.us-east-1.amazonaws.com/", "localhost:5000/"])


@settings(max_examples=60, deadline=None)
@given(_registry, _name, _tag, _digest, st.booleans())
def test_image_pinning_matches_its_definition(registry, name, tag, digest, require_digest) -> None:
    image = f"{registry}{name}" + (f":{tag}" if tag else "") + (f"@sha256:{digest}" if digest else "")
    b = PlanBuilder()
    b.add("kubernetes:core/v1:Pod", "p", {"spec": {"containers": [{"name": "c", "image": image}]}})
    fired = bool(evaluate_plan(b.plan(), only("k8s-image-pinning", requireDigest=require_digest)))
    # The registry's port (localhost:5000) is not a tag.
    bad = tag == "latest" or (not tag and not digest) or (require_digest and not digest)
    assert fired == bad, image


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["0.0.0.0/0", "::/0", "10.0.0.0/8", "203.0.113.7/32"]),
    st.sampled_from(["tcp", "udp", "-1"]),
    st.integers(1, 65535),
    st.booleans(),
)
def test_public_ingress_only_on_alb_web_ports(cidr, proto, port, on_alb) -> None:
    b = PlanBuilder()
    sg = b.add("aws:ec2/securityGroup:SecurityGroup", "sg", {"name": "sg"})
    if on_alb:
        b.add("aws:lb/loadBalancer:LoadBalancer", "alb", {"internal": False, "securityGroups": ["sg"]}, deps=[sg])
    key = "cidrIpv6" if ":" in cidr else "cidrIpv4"
    b.add(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "rule",
        {"securityGroupId": "sg", key: cidr, "ipProtocol": proto, "fromPort": float(port), "toPort": float(port)},
        deps=[sg],
    )
    fired = bool(evaluate_plan(b.plan(), only("sg-no-public-ingress")))
    public = cidr in ("0.0.0.0/0", "::/0")
    assert fired == (public and not (on_alb and proto == "tcp" and port in (80, 443)))
