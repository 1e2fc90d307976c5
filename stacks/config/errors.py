"""ConfigError: the one exception a bad stack config raises, with a message a person can act on."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """Raised before any resource is registered. `problems` lists (key, message) pairs."""

    def __init__(self, stack: str, problems: list[tuple[str, str]]) -> None:
        self.stack = stack
        self.problems = problems
        lines = [f"invalid config for stack '{stack}':"]
        lines += [f"  visionrag:{key}: {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


class ConfigFileError(ConfigError):
    """A stack or project file that is not valid YAML: named with its line and column, like any config error."""

    def __init__(self, stack: str, file: str, line: int | None, column: int | None, problem: str) -> None:
        where = file if line is None else f"{file}, line {line}" + ("" if column is None else f", column {column}")
        ValueError.__init__(self, f"invalid config for stack '{stack}': {where}: {problem}")
        self.stack = stack
        self.problems = [(f"{file}:{line}" if line is not None else file, problem)]
        self.file, self.line, self.column = file, line, column


def from_yaml_error(stack: str, path: Path, err: Exception) -> ConfigFileError:
    """`err` from yaml.safe_load of `path`: the file, 1-based line/column and the parser's own words."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
    return ConfigFileError(
        stack,
        path.name,
        mark.line + 1 if mark is not None else None,
        mark.column + 1 if mark is not None else None,
        f"not valid YAML: {problem or err}",
    )


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model that the (alias) key path leads to, through nested models, lists and dicts."""
    current: Any = model
    for part in path:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        fields = {(f.alias or name): f for name, f in current.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """For an unknown key at `loc`: the closest allowed key of its model, and the allowed keys."""
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return ""
    allowed = sorted(f.alias or name for name, f in parent.model_fields.items())
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed: {', '.join(allowed)}"


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


def from_validation_error(stack: str, err: ValidationError, model: type[BaseModel] | None = None) -> ConfigError:
    """`model` (default StackConfig) is what was validated: it names the allowed keys for an unknown one."""
    if model is None:
        from stacks.config.stack import StackConfig  # local: stack.py's models import this module

        model = StackConfig
    problems: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        key = _loc_to_key(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            hint = did_you_mean(model, tuple(e["loc"])) or "check the spelling against Pulumi.yaml's config section"
            msg = f"unknown key (value {e['input']!r}); {hint}"
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
