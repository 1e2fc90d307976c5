"""Reading a stack's config: tier defaults deep-merged with the visionrag:* values, then validated."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stacks.config.errors import ConfigError, from_validation_error, from_yaml_error
from stacks.config.stack import StackConfig
from stacks.config.tiers import TIER_DEFAULTS

NAMESPACE = "visionrag"
# Optional keys held as Pulumi secrets (`pulumi config set --secret`); never part of StackConfig, read as Outputs.
# They are deliberately NOT declared in Pulumi.yaml: the CLI cannot express "optional and secret" (a declared key
# without a default is required; a default is stored plain and then fails the `secret: true` check, see
# stacks/engine/offline.py). check_secret_keys() enforces "secret when set" instead, in the program itself.
SECRET_KEYS = frozenset({"llmApiKey", "sentryDsn"})


def check_secret_keys(stack: str, values: Mapping[str, Any], secret_keys: Collection[str]) -> None:
    """Refuse a SECRET_KEYS value that was set in plain text (`pulumi config set` without `--secret`).

    `values` maps un-namespaced keys to values; `secret_keys` holds the namespaced keys the engine marked secret.
    A plain value would sit unencrypted in Pulumi.<stack>.yaml and in the state: refused before any resource."""
    problems = [
        (key, f"is set in plain text; set it with `pulumi config set --secret {NAMESPACE}:{key}` (or remove it)")
        for key in sorted(SECRET_KEYS)
        if values.get(key) not in (None, "") and f"{NAMESPACE}:{key}" not in secret_keys
    ]
    if problems:
        raise ConfigError(stack, problems)


def read_yaml_file(stack: str, path: Path) -> Any:
    """`path` parsed as YAML; a syntax error is a ConfigFileError naming the file, line and column (exit 2 in
    the CLI), not a parser traceback."""
    import yaml  # local: only the file readers need it

    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise from_yaml_error(stack, path, err) from None


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
    # The language host marks secret keys in PULUMI_CONFIG_SECRET_KEYS; an in-process engine in the runtime.
    marked = set(rt_config.get_config_secret_keys_env())
    marked |= {f"{prefix}{k}" for k in SECRET_KEYS if rt_config.is_config_secret(f"{prefix}{k}")}
    check_secret_keys(stack, values, marked)
    return load_stack_config(stack, values)
