"""ACM DNS validation: the Route 53 record that proves a host to ACM (the ALB's certificate and CloudFront's).

ACM issues the same validation CNAME for a name in every region of an account, so a record may already exist (the
other certificate's for the same host): `allow_overwrite` makes that an update rather than a failure.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

DomainValidationOption = aws.acm.outputs.CertificateDomainValidationOption


def option_for(host: str, options: Sequence[DomainValidationOption]) -> DomainValidationOption:
    """The validation option ACM returned for `host` (a certificate with SANs returns one per name)."""
    for option in options:
        if option.domain_name == host:
            return option
    raise ValueError(f"ACM returned no DNS validation record for {host!r}")


def validation_record(
    name: str,
    *,
    zone_id: pulumi.Input[str],
    option: pulumi.Output[DomainValidationOption],
    opts: pulumi.ResourceOptions,
) -> aws.route53.Record:
    return aws.route53.Record(
        name,
        zone_id=zone_id,
        name=option.apply(lambda o: o.resource_record_name or ""),
        type=option.apply(lambda o: o.resource_record_type or "CNAME"),
        records=[option.apply(lambda o: o.resource_record_value or "")],
        ttl=300,
        allow_overwrite=True,
        opts=opts,
    )
