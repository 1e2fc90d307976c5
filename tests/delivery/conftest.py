"""Fixtures of the promotion tests: moto ECR with the project's repositories, a blob store, a signing key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from tests.delivery.oci_fixtures import REGION, REPOS, Blobs, new_key


@pytest.fixture
def ecr() -> Iterator[Any]:
    """moto ECR with the four repositories, tag-immutable like infra/registry.py makes them."""
    with mock_aws():
        client = boto3.client("ecr", region_name=REGION)
        for repo in REPOS:
            client.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
        yield client


@pytest.fixture
def blobs() -> Blobs:
    return Blobs()


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return new_key()
