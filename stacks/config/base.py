"""The base every stack-config model inherits: strict, camelCase in YAML, snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class StrictModel(BaseModel):
    # extra="forbid": a misspelled key in Pulumi.<stack>.yaml must fail loudly, not be silently ignored and leave
    # a secure default in place that the author believed they had changed (or the reverse).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )
