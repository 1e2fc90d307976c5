"""TCP paths between two security groups: one egress rule on the source and its matching ingress on the target.

A path between groups needs both halves (egress rules are not implied once a group's default egress is
replaced), and writing them apart is how one half gets forgotten or drifts to another port.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def allow_tcp_between(
    *,
    egress_name: str,
    ingress_name: str,
    source_sg_id: pulumi.Input[str],
    target_sg_id: pulumi.Input[str],
    port: int,
    egress_description: str,
    ingress_description: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.vpc.SecurityGroupEgressRule, aws.vpc.SecurityGroupIngressRule]:
    egress = aws.vpc.SecurityGroupEgressRule(
        egress_name,
        security_group_id=source_sg_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=target_sg_id,
        description=egress_description,
        tags=tags,
        opts=opts,
    )
    ingress = aws.vpc.SecurityGroupIngressRule(
        ingress_name,
        security_group_id=target_sg_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=source_sg_id,
        description=ingress_description,
        tags=tags,
        opts=opts,
    )
    return egress, ingress
