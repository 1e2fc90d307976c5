"""CiRunners: the CodeBuild-hosted GitHub Actions runner that deploys this stack from inside its VPC.

Staging and prod have a private EKS endpoint only: a GitHub-hosted runner can never reach it, so the deploy,
plan and preview jobs of those stacks run on a CodeBuild project in the stack's private subnets instead. CodeBuild
starts one ephemeral runner per queued workflow job whose label is `codebuild-<project>-<run id>-<attempt>`
(AWS CodeBuild user guide, "Self-hosted GitHub Actions runners in AWS CodeBuild").

Secure by construction:
- nothing public: the runner has no inbound rule at all; outbound is HTTPS only (GitHub, AWS APIs, the state
  bucket, package registries through the NAT gateways) plus its one path to the cluster endpoint's security group;
- the project's own service role can only write its log group, manage its ENIs in the stack's subnets and use the
  one CodeConnections connection. It grants nothing in the account: every job still assumes the deploy or preview
  role through GitHub OIDC (role trust pinned to the GitHub Environment), exactly as on a GitHub-hosted runner, so
  a pull request running on the runner gets no more than the read-only preview role;
- only the workflows named in RUNNER_WORKFLOWS can start builds (webhook WORKFLOW_NAME filter), so ci.yml (which
  runs arbitrary PR code with no need for the VPC) never lands inside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam import service_trust
from infra.naming import LOG_RETENTION_DAYS
from infra.policy_document import policy_document
from infra.sg_rules import allow_tcp_between

__all__ = [
    "CODE_CONNECTION_ARN",
    "GITHUB_REPOSITORY",
    "RUNNER_COMPUTE_TYPES",
    "RUNNER_IMAGE",
    "RUNNER_WORKFLOWS",
    "CiRunners",
    "CiRunnersArgs",
    "runner_label",
    "runner_project_name",
]

# Sizes a deploy job fits in (pulumi + the Python program); the larger CodeBuild types only add cost.
RUNNER_COMPUTE_TYPES = ("BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE")
# CodeBuild's curated Ubuntu 22.04 image (git, jq, the AWS CLI preinstalled): the OS actions/setup-python ships
# its Python builds for, so the workflows' steps run here exactly as on a GitHub-hosted runner.
RUNNER_IMAGE = "aws/codebuild/standard:7.0"
# The workflows allowed onto the runner (their `name:`), as a webhook WORKFLOW_NAME pattern.
RUNNER_WORKFLOWS = ("deploy", "preview")
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def check_github_repository(value: str | None) -> str | None:
    """`owner/name` as GitHub spells it (None passes: the key is optional where it is read)."""
    if value is not None and not GITHUB_REPOSITORY.match(value):
        raise ValueError(f"{value!r} is not a GitHub repository 'owner/name'")
    return value


# CodeConnections (formerly CodeStar Connections) connection ARN; the connection is approved once in the console.
CODE_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:connection/[0-9a-f-]{36}$"
)
BUILD_TIMEOUT_MINUTES = (5, 2160)  # CodeBuild's limits for build_timeout


def runner_project_name(physical_prefix: str) -> str:
    """The CodeBuild project of a stack ('<namePrefix>-<tier>-gha-runner'): the workflows' runs-on label names it."""
    return f"{physical_prefix}-gha-runner"


def runner_label(project_name: str) -> str:
    """The `runs-on` label CodeBuild answers for this project (one ephemeral runner per job run attempt)."""
    return f"codebuild-{project_name}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"


@dataclass(frozen=True, kw_only=True)
class CiRunnersArgs:
    name_prefix: str  # "<namePrefix>-<tier>"
    region: str
    account_id: pulumi.Input[str]
    github_repository: str  # "owner/name"
    code_connection_arn: str
    compute_type: str
    build_timeout_minutes: int
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # The EKS-managed cluster security group: the control plane's ENIs (the private endpoint) carry it.
    cluster_security_group_id: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


def _validate(args: CiRunnersArgs) -> None:
    if not GITHUB_REPOSITORY.match(args.github_repository):
        raise ValueError(f"github_repository: {args.github_repository!r} is not 'owner/name'")
    if not CODE_CONNECTION_ARN.match(args.code_connection_arn):
        raise ValueError(f"code_connection_arn: {args.code_connection_arn!r} is not a CodeConnections connection ARN")
    if args.compute_type not in RUNNER_COMPUTE_TYPES:
        raise ValueError(f"compute_type: {args.compute_type!r}; allowed: {', '.join(RUNNER_COMPUTE_TYPES)}")
    lo, hi = BUILD_TIMEOUT_MINUTES
    if not lo <= args.build_timeout_minutes <= hi:
        raise ValueError(f"build_timeout_minutes: {args.build_timeout_minutes}; allowed: {lo}-{hi}")
    if args.log_retention_days not in LOG_RETENTION_DAYS:
        raise ValueError(f"log_retention_days: {args.log_retention_days}; allowed: {sorted(LOG_RETENTION_DAYS)}")
    if len(args.private_subnet_ids) < 2:
        raise ValueError("private_subnet_ids: the runner needs subnets in at least two AZs")


class CiRunners(pulumi.ComponentResource):
    project: aws.codebuild.Project
    project_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CiRunnersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("visionrag:infra:CiRunners", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        tags = dict(args.tags)
        project = runner_project_name(args.name_prefix)

        # Created first so it has our key and retention instead of an unencrypted, never-expiring default group.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/codebuild/{project}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            opts=child,
        )

        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{project}",
            description=f"CodeBuild GitHub Actions runner of {args.name_prefix}: no inbound, HTTPS out only",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        # GitHub (job queue, actions, OIDC), AWS APIs, the state bucket and registries all live behind HTTPS.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS to GitHub, AWS APIs and package registries (through the NAT gateways)",
            tags=tags,
            opts=child,
        )
        # The one path into the platform: the private cluster endpoint, nothing else (nodes, cache, pods).
        allow_tcp_between(
            egress_name=f"{name}-to-cluster-endpoint",
            ingress_name=f"{name}-cluster-endpoint-from-runner",
            source_sg_id=sg.id,
            target_sg_id=args.cluster_security_group_id,
            port=443,
            egress_description="Kubernetes API (private EKS endpoint)",
            ingress_description=f"Kubernetes API from the deploy runner {project}",
            tags=tags,
            opts=child,
        )

        account = pulumi.Output.from_input(args.account_id)
        subnet_arns = [
            pulumi.Output.all(account, s).apply(lambda a: f"arn:aws:ec2:{args.region}:{a[0]}:subnet/{a[1]}")
            for s in args.private_subnet_ids
        ]
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{project}-service",
            description=f"CodeBuild service role of {project}: logs, VPC ENIs, the GitHub connection; nothing else",
            assume_role_policy=service_trust("codebuild.amazonaws.com", opts=invoke),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            # "Allow CodeBuild to interact with other AWS services" + "Use CodeBuild with Amazon VPC" (user guide).
            policy=policy_document(
                [
                    {
                        "sid": "WriteOwnLogs",
                        "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "resources": [log_group.arn.apply(lambda a: f"{a}:*")],
                    },
                    {
                        "sid": "DescribeNetwork",
                        "actions": [
                            "ec2:DescribeDhcpOptions",
                            "ec2:DescribeNetworkInterfaces",
                            "ec2:DescribeSubnets",
                            "ec2:DescribeSecurityGroups",
                            "ec2:DescribeVpcs",
                        ],
                        "resources": ["*"],  # Describe* has no resource-level permissions
                    },
                    {
                        "sid": "ManageBuildEnis",
                        "actions": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                        "resources": ["*"],  # the ENI does not exist yet; CreateNetworkInterfacePermission pins it
                    },
                    {
                        "sid": "AttachEnisInStackSubnetsOnly",
                        "actions": ["ec2:CreateNetworkInterfacePermission"],
                        "resources": [account.apply(lambda a: f"arn:aws:ec2:{args.region}:{a}:network-interface/*")],
                        "conditions": [
                            {"test": "StringEquals", "variable": "ec2:Subnet", "values": subnet_arns},
                            {
                                "test": "StringEquals",
                                "variable": "ec2:AuthorizedService",
                                "values": ["codebuild.amazonaws.com"],
                            },
                        ],
                    },
                    {
                        "sid": "UseGitHubConnection",
                        "actions": [
                            "codeconnections:GetConnection",
                            "codeconnections:GetConnectionToken",
                            "codeconnections:UseConnection",
                        ],
                        "resources": [args.code_connection_arn],
                    },
                ],
                opts=invoke,
            ),
            opts=child,
        )

        self.project = aws.codebuild.Project(
            f"{name}-project",
            name=project,
            description=f"GitHub Actions runners for {args.github_repository} inside {args.name_prefix}'s VPC",
            service_role=role.arn,
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB",
                location=f"https://github.com/{args.github_repository}.git",
                # The connection a person approved once (docs/runbooks/bootstrap-new-account.md): no token stored.
                auth=aws.codebuild.ProjectSourceAuthArgs(type="CODECONNECTIONS", resource=args.code_connection_arn),
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                compute_type=args.compute_type,
                image=RUNNER_IMAGE,
                image_pull_credentials_type="CODEBUILD",
                privileged_mode=False,  # no Docker daemon: deploy jobs never build images
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id, subnets=list(args.private_subnet_ids), security_group_ids=[sg.id]
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            build_timeout=args.build_timeout_minutes,
            queued_timeout=60,
            project_visibility="PRIVATE",
            badge_enabled=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        aws.codebuild.Webhook(
            f"{name}-webhook",
            project_name=self.project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern="WORKFLOW_JOB_QUEUED"),
                        aws.codebuild.WebhookFilterGroupFilterArgs(
                            type="WORKFLOW_NAME", pattern=f"^({'|'.join(RUNNER_WORKFLOWS)})$"
                        ),
                    ]
                )
            ],
            opts=child,
        )

        self.project_name = self.project.name
        self.security_group_id = sg.id
        self.role_arn = role.arn
        self.register_outputs(
            {"project_name": self.project_name, "security_group_id": self.security_group_id, "role_arn": role.arn}
        )
