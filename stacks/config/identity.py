"""The stack's own OIDC issuer (infra/identity.py, an Amazon Cognito user pool): the settings that vary per tier.

Used unless `workloads.auth` names an external identity provider. The allowed values are the component's own
(MFA_MODES, THREAT_PROTECTION_MODES), written here in lower case.
"""

from __future__ import annotations

from pydantic import field_validator

from infra.identity import MFA_MODES, THREAT_PROTECTION_MODES
from stacks.config.base import StrictModel


class IdentityConfig(StrictModel):
    # optional: each user may enrol a TOTP authenticator; on: every user must (floor outside dev).
    mfa: str
    # Cognito threat protection (Plus plan): off | audit (log risky sign-ins) | enforced (block / challenge them).
    threat_protection: str
    # The user pool cannot be deleted (by `pulumi destroy` or anyone) until this is turned off.
    deletion_protection: bool

    @field_validator("mfa")
    @classmethod
    def _mfa(cls, v: str) -> str:
        if v.upper() not in MFA_MODES:
            raise ValueError(f"{v!r} not allowed; allowed: {', '.join(m.lower() for m in MFA_MODES)}")
        return v

    @field_validator("threat_protection")
    @classmethod
    def _threat(cls, v: str) -> str:
        if v.upper() not in THREAT_PROTECTION_MODES:
            raise ValueError(f"{v!r} not allowed; allowed: {', '.join(m.lower() for m in THREAT_PROTECTION_MODES)}")
        return v
