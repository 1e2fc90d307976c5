"""ServiceLinkedRoles: the account-level service-linked roles that a policy of this stack names before the service
that owns the role has had a chance to create it.

Most AWS services create their service-linked role themselves on first use (EKS, EKS node groups, Elastic Load
Balancing, ElastiCache, the AMP scraper): nothing of ours names those roles before the service call that makes
them, so they are left to the service. EC2 Auto Scaling is different for this stack: the EBS key policy must name
`AWSServiceRoleForAutoScaling` (the role that launches the node groups' encrypted volumes), and KMS refuses a key
policy naming a principal that does not exist (`MalformedPolicyDocumentException`). On a fresh account that role
does not exist until the first Auto Scaling group is created, which is after the key. So the stack creates it.

`create=False` is for accounts that already have the roles (CreateServiceLinkedRole refuses a second one,
"has been taken in this account"): the roles are then looked up by name, so a missing one fails `pulumi preview`
with NoSuchEntity instead of failing `pulumi up` half-way through with a malformed key policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

AUTOSCALING = "autoscaling.amazonaws.com"
# The service principal -> the fixed name AWS gives its (default) service-linked role.
ROLE_NAMES: dict[str, str] = {AUTOSCALING: "AWSServiceRoleForAutoScaling"}
# What the stack relies on being there before a key policy names it (see the module docstring for the others).
REQUIRED_SERVICES: tuple[str, ...] = (AUTOSCALING,)


@dataclass(frozen=True, kw_only=True)
class ServiceLinkedRolesArgs:
    # True: create the roles (a fresh account). False: the account has them already; look them up.
    create: bool
    services: Sequence[str] = REQUIRED_SERVICES
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: ServiceLinkedRolesArgs) -> None:
    unknown = sorted(set(args.services) - set(ROLE_NAMES))
    if unknown or not args.services:
        raise ValueError(
            f"services: {list(args.services)!r} not supported ({unknown or 'empty'}); allowed: {sorted(ROLE_NAMES)}"
        )
    if len(set(args.services)) != len(args.services):
        raise ValueError(f"services: {list(args.services)!r} lists a service twice")


class ServiceLinkedRoles(pulumi.ComponentResource):
    roles: dict[str, aws.iam.ServiceLinkedRole]  # empty when the roles pre-exist
    arns: dict[str, pulumi.Output[str]]  # service -> role ARN (a policy naming it depends on the role)

    def __init__(self, name: str, args: ServiceLinkedRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:ServiceLinkedRoles", name, None, opts)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        self.roles = {}
        self.arns = {}
        for service in args.services:
            label = service.split(".", 1)[0]
            role_name = ROLE_NAMES[service]
            if args.create:
                role = aws.iam.ServiceLinkedRole(
                    f"{name}-{label}",
                    aws_service_name=service,
                    description=f"Service-linked role of {service} (created by the stack: a key policy names it)",
                    tags={**args.tags, "Name": role_name},
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.roles[service] = role
                self.arns[service] = role.arn
            else:
                # The lookup fails in preview when the role is missing: the config promised it exists.
                self.arns[service] = aws.iam.get_role_output(name=role_name, opts=invoke_opts).arn
        self.register_outputs({"arns": self.arns})
