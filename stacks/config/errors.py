"""ConfigError: the one exception a bad stack config raises, with a message a person can act on."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """Raised before any resource is registered. `problems` lists (key, message) pairs."""

    def __init__(self, stack: str, problems: list[tuple[str, str]]) -> None:
        self.stack = stack
        self.problems = problems
        lines = [f"invalid config for stack '{stack}':"]
        lines += [f"  visionrag:{key}: {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


def _loc_to_key(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif str(part).startswith("function-") or part in ("tagged-union",):
            continue
        else:
            key += ("." if key else "") + str(part)
    return key or "(root)"


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool) or v is None


_ROOT_SUBJECT = re.compile(r"^(?P<sub>[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*) (?=[a-z(])")
_SUBKEY = re.compile(r"^(?P<sub>[A-Za-z][\w.\[\]]*): (?P<rest>.+)$", re.S)


def from_validation_error(stack: str, err: ValidationError) -> ConfigError:
    problems: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        key = _loc_to_key(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key (value {e['input']!r}); check the spelling against Pulumi.yaml's config section"
        elif e["type"] == "value_error" and (m := _SUBKEY.match(msg)):
            # A model-level check names the field it is about ("api.image: ..."): fold it into the key.
            key, msg = f"{key}.{m['sub']}" if key != "(root)" else m["sub"], m["rest"]
        elif key == "(root)" and (m := _ROOT_SUBJECT.match(msg)):
            # A stack-wide floor names the key it is about first ("workloads.allowedOrigins may not ..."):
            # report it under that key, keeping the whole sentence.
            key = m["sub"]
        elif e["type"] != "missing" and (
            _scalar(e.get("input")) or (isinstance(e.get("input"), list) and all(map(_scalar, e["input"])))
        ):
            msg = f"{msg} (got {e['input']!r})"
        problems.append((key, msg))
    return ConfigError(stack, problems)
