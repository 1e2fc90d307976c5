"""Reading a stack's config: tier defaults deep-merged with the visionrag:* values, then validated."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from stacks.config.errors import ConfigError, from_validation_error
from stacks.config.stack import StackConfig
from stacks.config.tiers import TIER_DEFAULTS

NAMESPACE = "visionrag"
# Keys held as Pulumi secrets (`pulumi config set --secret`); never part of StackConfig, read as Outputs.
SECRET_KEYS = frozenset({"llmApiKey", "sentryDsn"})


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _decode(value: Any) -> Any:
    # The engine hands structured values over as JSON text; plain strings stay strings.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_stack_config(stack: str, values: Mapping[str, Any]) -> StackConfig:
    """`values` maps un-namespaced keys ('network', 'tier', ...) to their (possibly JSON-encoded) values."""
    # Pulumi.yaml declares `default: ""` for optional scalar keys (the CLI requires a default for every key a
    # stack may omit): an empty string means "not set", so the tier / model default applies.
    raw = {k: _decode(v) for k, v in values.items() if k not in SECRET_KEYS and v != ""}
    tier = raw.get("tier", stack)
    if tier not in TIER_DEFAULTS:
        raise ConfigError(
            stack,
            [("tier", f"{tier!r} is not a tier; allowed: {', '.join(TIER_DEFAULTS)} (set visionrag:tier)")],
        )
    merged = deep_merge(TIER_DEFAULTS[tier], {**raw, "tier": tier})
    try:
        return StackConfig.model_validate(merged)
    except ValidationError as err:
        raise from_validation_error(stack, err) from None


def config_from_pulumi(stack: str) -> StackConfig:
    """Read every visionrag:* key the engine (real CLI or offline mocks) was given."""
    from pulumi.runtime import config as rt_config  # local: keeps pure config validation free of pulumi

    prefix = f"{NAMESPACE}:"
    # The language host hands config over in PULUMI_CONFIG; an in-process engine (mocks, automation) sets the
    # runtime's config map instead. pulumi.Config reads both, the map first: so does this.
    bag = {**rt_config.get_config_env(), **rt_config.CONFIG.get()}
    values = {k[len(prefix) :]: v for k, v in bag.items() if k.startswith(prefix)}
    return load_stack_config(stack, values)
