"""Typed stack configuration: tier defaults + Pulumi.<stack>.yaml overrides, validated before any resource."""

from stacks.config.errors import ConfigError
from stacks.config.loader import SECRET_KEYS, check_secret_keys, config_from_pulumi, deep_merge, load_stack_config
from stacks.config.stack import StackConfig

__all__ = [
    "SECRET_KEYS",
    "ConfigError",
    "StackConfig",
    "check_secret_keys",
    "config_from_pulumi",
    "deep_merge",
    "load_stack_config",
]
