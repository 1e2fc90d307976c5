"""The frontend's Secrets Manager secret (infra/frontend_secret.py), as the full program wires it."""

from __future__ import annotations

import json

import pytest

from stacks.engine.offline import Record
from tests.infra.platform_graph import STACKS, component, key_arn, under

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


@pytest.mark.parametrize("stack", STACKS)
def test_frontend_secret_is_kms_encrypted_and_only_ever_secret(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    root = component(record, "visionrag:infra:FrontendAuthSecret")
    (secret,) = under(record, root, SECRET)
    assert secret.inputs["name"] == f"{record.config.physical_name()}/frontend-auth"
    assert secret.inputs["kmsKeyId"] == key_arn(record, "secrets")
    (version,) = under(record, root, VERSION)
    assert version.inputs["secretString"] == "[secret]"
    # Built from the Cognito app client (its secret) and a generated session secret.
    (client,) = record.of_type("aws:cognito/userPoolClient:UserPoolClient")
    assert client.urn in version.dependencies
    (session,) = under(record, root, "random:index/randomPassword:RandomPassword")
    assert session.inputs["length"] >= 32 and session.inputs["special"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_reader_may_read_the_frontend_secret(records: dict[str, Record], stack: str) -> None:
    record = records[stack]
    (secret,) = under(record, component(record, "visionrag:infra:FrontendAuthSecret"), SECRET)
    (policy,) = [r for r in record.of_type("aws:iam/rolePolicy:RolePolicy") if "secrets-reader" in r.name]
    doc = json.loads(policy.inputs["policy"])
    (read,) = [s for s in doc["Statement"] if s.get("Sid") == "ReadProjectSecrets"]
    assert secret.outputs["arn"] in read["Resource"]
