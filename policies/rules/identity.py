"""IAM: no administrator wildcards, and trust policies that say exactly who may assume a role.
Cognito: the stack's user pool and app client keep the secure settings infra/identity.py hard-codes."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Policy, ResourceValidationArgs, Severity

from infra.identity import PASSWORD_MIN_LENGTH
from policies.rules._base import (
    Report,
    as_list,
    config_schema,
    get,
    knob,
    number,
    policy_document,
    resource_policy,
    statements,
    truthy,
)

ROLE = "aws:iam/role:Role"
PERMISSION_POLICIES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
ADMIN_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
}


def _wildcard_action(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def _no_admin(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type in ATTACHMENTS:
        arn = get(args.props, "policyArn")
        if arn in ADMIN_MANAGED_POLICIES:
            report(f"attaches {arn}: grant the actions the workload needs on the project's ARNs instead")
        return
    if args.resource_type == ROLE:
        for inline in as_list(get(args.props, "inlinePolicies")):
            _judge(policy_document(get(inline, "policy")), report, f"inline policy {get(inline, 'name')}")
        return
    prop = PERMISSION_POLICIES.get(args.resource_type)
    if prop is not None:
        _judge(policy_document(get(args.props, prop)), report, "policy")


def _judge(doc: dict[str, Any] | None, report: Report, where: str) -> None:
    for st in statements(doc):
        if st.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(st.get("Action")) if _wildcard_action(a)]
        if actions and "*" in as_list(st.get("Resource")):
            report(f"{where} statement {st.get('Sid', '<no Sid>')} allows {actions} on Resource '*'")
        if st.get("NotAction") is not None:
            report(f"{where} statement {st.get('Sid', '<no Sid>')} uses NotAction with Allow (grants everything else)")


def _principal_star(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))


def _trust(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != ROLE:
        return
    for st in statements(policy_document(get(args.props, "assumeRolePolicy"))):
        if st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid", "<no Sid>")
        if _principal_star(st.get("Principal")):
            report(f"trust statement {sid} lets any AWS principal assume the role")
        if "sts:AssumeRoleWithWebIdentity" in as_list(st.get("Action")):
            keys = [k for block in (st.get("Condition") or {}).values() if isinstance(block, dict) for k in block]
            if not any(k.endswith(":sub") for k in keys):
                report(
                    f"trust statement {sid} accepts web identities without a ':sub' condition: every service "
                    "account of the cluster could assume the role"
                )


USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"


def _cognito(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == USER_POOL:
        policy = get(props, "passwordPolicy") or {}
        length = number(get(policy, "minimumLength"))
        if length is None or length < PASSWORD_MIN_LENGTH:
            report(f"passwordPolicy.minimumLength is {length!r}: at least {PASSWORD_MIN_LENGTH} characters")
        weak = [
            k
            for k in ("requireLowercase", "requireUppercase", "requireNumbers", "requireSymbols")
            if not truthy(get(policy, k))
        ]
        if weak:
            report(f"passwordPolicy does not set {weak}: passwords must use all four character classes")
        mfa = get(props, "mfaConfiguration")
        allowed = ["ON"] if knob(args, "requireMfa", True) else ["ON", "OPTIONAL"]
        if mfa not in allowed:
            report(f"mfaConfiguration is {mfa!r}; this stack allows {allowed}")
        if not truthy(get(props, "adminCreateUserConfig", "allowAdminCreateUserOnly")):
            report("self sign-up is open (adminCreateUserConfig.allowAdminCreateUserOnly is not true)")
        if knob(args, "requireDeletionProtection", True) and get(props, "deletionProtection") != "ACTIVE":
            report(f"deletionProtection is {get(props, 'deletionProtection')!r}: must be 'ACTIVE' in this stack")
        return
    if args.resource_type == USER_POOL_CLIENT:
        flows = [str(f) for f in as_list(get(props, "allowedOauthFlows"))]
        if flows != ["code"]:
            report(f"allowedOauthFlows is {flows}: only the authorization-code flow ('code'), never 'implicit'")
        insecure = [u for u in as_list(get(props, "callbackUrls")) if not str(u).startswith("https://")]
        if insecure:
            report(f"callbackUrls {insecure} are not https")
        if get(props, "preventUserExistenceErrors") != "ENABLED":
            report("preventUserExistenceErrors is not 'ENABLED': sign-in errors reveal which users exist")
        if not truthy(get(props, "enableTokenRevocation")):
            report("enableTokenRevocation is not true: a leaked refresh token cannot be revoked")


POLICIES: list[Policy] = [
    resource_policy(
        name="iam-no-wildcard-admin",
        description="No IAM policy allows '*' or '<service>:*' on Resource '*', uses Allow with NotAction, or "
        "attaches AdministratorAccess/PowerUserAccess/IAMFullAccess.",
        severity=Severity.CRITICAL,
        remediation="List the actions the role needs and scope Resource to the project's ARNs (bucket, key, "
        "secret, target group); read-only Describe* calls on '*' are fine.",
        validate=_no_admin,
        tags=["iam", "least-privilege"],
    ),
    resource_policy(
        name="iam-trust-scoped",
        description="Role trust policies name their principals: never any AWS principal, and web-identity "
        "(IRSA) trusts pin the service account with a ':sub' condition.",
        severity=Severity.HIGH,
        remediation="Trust a service principal or a named role; for IRSA add "
        "StringEquals {'<oidc-provider>:sub': 'system:serviceaccount:<namespace>:<name>'}.",
        validate=_trust,
        tags=["iam", "identity"],
    ),
    resource_policy(
        name="cognito-user-pool-hardened",
        description="The Cognito user pool requires strong passwords, TOTP MFA (mandatory where the stack says), "
        "admin-only sign-up and deletion protection where the stack says; its app clients use the code flow "
        "over https only, hide user existence and can revoke tokens.",
        severity=Severity.HIGH,
        remediation="Build the pool with infra/identity.py (its defaults are these settings); per tier set "
        "visionrag:identity {mfa, deletionProtection}.",
        validate=_cognito,
        schema=config_schema(
            {
                "requireMfa": {"type": "boolean", "default": True},
                "requireDeletionProtection": {"type": "boolean", "default": True},
            }
        ),
        tags=["cognito", "identity", "authentication"],
    ),
]
