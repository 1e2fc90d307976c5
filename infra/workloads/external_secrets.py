"""Secrets from AWS Secrets Manager through the External Secrets Operator.

One namespaced SecretStore authenticates with IRSA through its own ServiceAccount (`secrets-reader`, whose
role may read only this project's secret ARNs and decrypt only with the secrets key, via Secrets Manager). The
ESO controller itself holds no AWS permissions. Each ExternalSecret materialises one Kubernetes Secret with a
single key `value`, which pods mount as a file (container.secrets_volume), never as env.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.workloads.labels import labels

API_VERSION = "external-secrets.io/v1"
STORE = "aws-secrets-manager"
REFRESH = "1h"


@dataclass(frozen=True, kw_only=True)
class SecretSource:
    """Where one Kubernetes Secret comes from.

    `remote_name`: the Secrets Manager secret name or ARN. Without `template` the Secret has one key, `value`,
    holding the remote string. With `template` (Secret key -> ESO v2 template) the keys are rendered: the remote
    value is `{{ .secret }}`, or, with `extract`, the remote JSON object's fields are `{{ .<field> }}`.
    """

    remote_name: pulumi.Input[str]
    template: Mapping[str, pulumi.Input[str]] | None = None
    extract: bool = False

    def __post_init__(self) -> None:
        if self.extract and not self.template:
            raise ValueError("SecretSource.template: extracting a JSON secret needs a template naming its keys")


@dataclass(frozen=True, kw_only=True)
class ExternalSecretsArgs:
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    region: str
    service_account: pulumi.Input[str]
    # Kubernetes Secret name -> where its value comes from.
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()


class ExternalSecrets(pulumi.ComponentResource):
    store: k8s.apiextensions.CustomResource
    external_secrets: dict[str, k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.secrets:
            raise ValueError("ExternalSecretsArgs.secrets: at least one secret is required")
        super().__init__("visionrag:workloads:ExternalSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        self.store = k8s.apiextensions.CustomResource(
            f"{name}-store",
            api_version=API_VERSION,
            kind="SecretStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=STORE, namespace=args.namespace, labels=labels("external-secrets")
            ),
            spec={
                "provider": {
                    "aws": {
                        "service": "SecretsManager",
                        "region": args.region,
                        "auth": {"jwt": {"serviceAccountRef": {"name": args.service_account}}},
                    }
                }
            },
            opts=child,
        )
        self.external_secrets = {}
        for secret, source in sorted(args.secrets.items()):
            target: dict[str, object] = {"name": secret, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
            if source.template is not None:
                target["template"] = {"engineVersion": "v2", "data": dict(source.template)}
            data: dict[str, object] = (
                {"dataFrom": [{"extract": {"key": source.remote_name}}]}
                if source.extract
                else {
                    "data": [
                        {
                            "secretKey": "secret" if source.template else "value",
                            "remoteRef": {"key": source.remote_name},
                        }
                    ]
                }
            )
            self.external_secrets[secret] = k8s.apiextensions.CustomResource(
                f"{name}-{secret}",
                api_version=API_VERSION,
                kind="ExternalSecret",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=secret, namespace=args.namespace, labels=labels(secret)),
                spec={
                    "refreshInterval": REFRESH,
                    "secretStoreRef": {"kind": "SecretStore", "name": STORE},
                    "target": target,
                    **data,
                },
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.store])),
            )
        self.register_outputs({"secrets": sorted(self.external_secrets)})
