"""Secrets: Secrets Manager under our own key, and nothing secret-looking in plain resource inputs.

Under the offline engine a pulumi secret is recorded as "[secret]"; under the CLI secret values reach the pack
unwrapped, so the value-pattern checks (key material, tokens) are what catch a leak there.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Policy, ResourceValidationArgs, Severity

from policies.rules._base import SECRET, Report, get, is_list, is_unknown, peek, present, raw, resource_policy

SECRET_TYPE = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
K8S_SECRET = "kubernetes:core/v1:Secret"  # noqa: S105 - a type token
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

# Input property names whose value is a credential by definition (camelCase, as Pulumi records them).
SENSITIVE_KEYS = {
    "password",
    "masterPassword",
    "authToken",
    "secretString",
    "secretBinary",
    "privateKey",
    "apiKey",
    "clientSecret",
    "secretAccessKey",
    "sessionToken",
}
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)", re.IGNORECASE
)
# Env/ConfigMap names that *refer* to a secret rather than hold it.
REFERENCE_NAME = re.compile(r"(_FILE|_PATH|_ARN|_NAME|_ID|_REF|_URL|_ENDPOINT|_TTL.*|_KEY_ID)$", re.IGNORECASE)
VALUE_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----"),
    "OpenAI API key": re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}"),
    "GitHub token": re.compile(r"\b(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}

_ANY_PATTERN = re.compile("|".join(f"(?:{p.pattern})" for p in VALUE_PATTERNS.values()))


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k in value:
            yield from _walk(value[k], f"{path}.{k}" if path else str(k))
    elif is_list(value):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def _last_key(path: str) -> str:
    return re.split(r"[.\[]", path)[-1].rstrip("]")


def _plain(value: Any) -> bool:
    # Unknown during preview means computed (an id, a generated password held as a secret output): not a
    # value written in the program.
    return isinstance(value, str) and value not in ("", SECRET) and not is_unknown(value)


def _looks_like_reference(value: str) -> bool:
    return value.startswith(("/", "arn:", "file:", "${")) or value.lower() in ("true", "false")


def _decoded(value: str) -> str | None:
    if len(value) < 16 or len(value) % 4:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="ignore")
    except (binascii.Error, ValueError):
        return None


def _env_leaks(props: Mapping[str, Any]) -> Iterator[str]:
    for path, value in _walk(props):
        if not path.endswith(".value") or ".env[" not in path:
            continue
        name = get(props, *_path_to_keys(path[: -len(".value")] + ".name"))
        secret_named = isinstance(name, str) and SECRET_NAME.search(name) and not REFERENCE_NAME.search(name)
        if secret_named and _plain(value) and not _looks_like_reference(value):
            yield f"env var {name} at {path} holds a literal value; use valueFrom.secretKeyRef or a mounted file"


def _path_to_keys(path: str) -> list[str | int]:
    keys: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        keys.append(int(part[1:-1]) if part.startswith("[") else part)
    return keys


def _no_plaintext(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type.startswith("pulumi:providers:"):
        return
    # Read the bag raw: an unknown id elsewhere in the inputs must not turn this whole check advisory.
    props = raw(args.props)
    for path, value in _walk(props):
        key = _last_key(path)
        if key in SENSITIVE_KEYS and _plain(value):
            report(f"{path} is a plain value; pass it as a pulumi secret (or generate it with pulumi_random)")
            continue
        if isinstance(value, str) and not is_unknown(value):
            texts = [value]
            if key == "userData" and (decoded := _decoded(value)):
                texts.append(decoded)
            for text in texts:
                if not _ANY_PATTERN.search(text):
                    continue
                for what, pattern in VALUE_PATTERNS.items():
                    if pattern.search(text):
                        report(f"{path} contains what looks like a {what}")
    for message in _env_leaks(props):
        report(message)
    if args.resource_type == K8S_SECRET:
        for field in ("data", "stringData"):
            for k, v in (get(props, field) or {}).items():
                if _plain(v):
                    report(
                        f"Secret {field}.{k} is a plain value in the program; source it from Secrets Manager "
                        "(ExternalSecret) or a pulumi secret"
                    )
    if args.resource_type == CONFIG_MAP:
        for k, v in (get(props, "data") or {}).items():
            if SECRET_NAME.search(k) and not REFERENCE_NAME.search(k) and _plain(v) and not _looks_like_reference(v):
                report(f"ConfigMap key {k} looks like a secret; ConfigMaps are not encrypted — use a Secret")


def _secrets_manager_key(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SECRET_TYPE:
        return
    key = peek(args.props, "kmsKeyId")
    if not present(args.props, "kmsKeyId") or (isinstance(key, str) and key.startswith("alias/aws/")):
        report(
            f"kmsKeyId is {key!r}: encrypt with the customer-managed secrets key (the AWS-managed key cannot "
            "be shared cross-account or audited by key policy)"
        )


POLICIES: list[Policy] = [
    resource_policy(
        name="secretsmanager-cmk",
        description="Secrets Manager secrets are encrypted with a customer-managed KMS key.",
        severity=Severity.HIGH,
        remediation="Set kms_key_id=<secrets key arn> on aws.secretsmanager.Secret.",
        validate=_secrets_manager_key,
        tags=["secrets", "encryption"],
    ),
    resource_policy(
        name="no-plaintext-secrets",
        description="No resource input holds a secret in plain text: credential-named properties, env vars, "
        "Kubernetes Secret data, ConfigMaps, user data and any string that looks like key material or a token.",
        severity=Severity.CRITICAL,
        remediation="Keep secrets in Secrets Manager (ExternalSecret into the cluster), or pass them as pulumi "
        "secrets (pulumi.Output.secret / `pulumi config set --secret`); reference them from env via "
        "valueFrom.secretKeyRef or mounted files.",
        validate=_no_plaintext,
        tags=["secrets"],
    ),
]
