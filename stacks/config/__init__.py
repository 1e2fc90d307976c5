"""Typed stack configuration: tier defaults + Pulumi.<stack>.yaml overrides, validated before any resource."""

from stacks.config.errors import ConfigError
from stacks.config.loader import SECRET_KEYS, config_from_pulumi, deep_merge, load_stack_config
from stacks.config.stack import StackConfig

__all__ = ["SECRET_KEYS", "ConfigError", "StackConfig", "config_from_pulumi", "deep_merge", "load_stack_config"]
