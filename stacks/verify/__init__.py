"""Checks against the live AWS account (boto3): `preflight` before `pulumi up`, `verify` and the canary gate after."""
