"""The app images install exactly the hash-locked sets, and each lock holds everything its image imports.

A Dockerfile that installs pyproject's top-level pins lets every transitive dependency float, so two builds of
one commit differ; one that installs a lock missing a module its code imports builds fine and crashes at start.
Both are checked here without a Docker daemon: the install lines are read from the Dockerfiles, and each image's
import closure is walked from its entrypoint (AST, following `app.*` imports) and resolved to distributions.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# image -> (Dockerfile, lock it must install, the modules its processes start from)
IMAGES = {
    "api": ("app/Dockerfile.api", "app", ("app.api.main", "app.api.healthcheck")),
    "worker": ("app/Dockerfile.worker", "app", ("app.worker.__main__", "app.worker.healthcheck", "app.ops")),
    "embedder": ("app/Dockerfile.embedder", "embedder", ("app.embedder.__main__",)),
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.M)
# Imported only where the runtime provides them, or by the process that runs outside these images.
NOT_IN_IMAGE = {"app.dev_servers", "app.local", "app.dev_llm", "app.dev_issuer"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runs(text: str) -> list[str]:
    """RUN instructions with their continuation lines joined."""
    return [m.replace("\\\n", " ") for m in re.findall(r"^RUN (.*?)(?<!\\)$", text, re.M | re.S)]


@pytest.mark.parametrize("image", IMAGES)
def test_pip_installs_only_the_hash_locked_set(image: str) -> None:
    dockerfile, lock, _ = IMAGES[image]
    text = (ROOT / dockerfile).read_text()
    assert f"COPY requirements/{lock}.txt ./requirements.txt" in text
    installs = [r for r in _runs(text) if "pip install" in r]
    assert installs, f"{dockerfile}: no pip install"
    for run in installs:
        # Every install is the lock, with hashes enforced and no resolver: nothing floats, nothing is added.
        assert re.search(r"pip install .*--require-hashes", run), run
        assert "--no-deps" in run and "--requirement requirements.txt" in run, run
        assert "--index-url" not in run and "--extra-index-url" not in run, run
        assert not re.search(r"pip install[^&]*\s\.(\s|$)", run), (
            f"installing the project fetches a build backend: {run}"
        )
    assert "pyproject.toml" not in text


def test_the_check_catches_a_floating_install() -> None:
    floating = "RUN pip install --no-compile --requirement requirements.txt\n"
    assert not re.search(r"pip install .*--require-hashes", _runs(floating)[0])


def test_the_build_context_keeps_machine_leftovers_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/__pycache__", ".venv*", ".git", "build"} <= set(ignored)


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """(module, level) of every import outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level
            for alias in node.names:  # `from app.x import y` may name a submodule
                yield f"{node.module}.{alias.name}" if node.module else alias.name, node.level


def _closure(starts: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(project modules reached, third-party top-level names imported) from the entry modules."""
    seen: set[str] = set()
    third: set[str] = set()
    todo = list(starts)
    if "app.ops" in todo:  # every ops command runs in the worker image (CronJobs, kubectl run)
        todo += [f"app.ops.{p.stem}" for p in (ROOT / "app" / "ops").glob("*.py") if p.stem != "__init__"]
    while todo:
        module = todo.pop()
        if module in seen or module in NOT_IN_IMAGE:
            continue
        path = _module_file(module)
        if path is None:
            continue
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for name, level in _imports(path):
            if level:
                parts = package.split(".")
                name = ".".join(parts[: len(parts) - level + 1] + ([name] if name else []))
            top = name.split(".")[0]
            if top == "app":
                todo.append(name)
                parent = name.rsplit(".", 1)[0]
                todo.append(parent)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return seen, third


def _locked(lock: str) -> set[str]:
    return {_norm(n) for n in _PIN.findall((ROOT / "requirements" / f"{lock}.txt").read_text())}


@pytest.mark.parametrize("image", IMAGES)
def test_the_lock_holds_every_distribution_the_image_imports(image: str) -> None:
    _, lock, starts = IMAGES[image]
    modules, third = _closure(starts)
    assert len(modules) > 5, modules
    providers = importlib.metadata.packages_distributions()
    locked = _locked(lock)
    missing = {}
    for top in sorted(third):
        dists = providers.get(top)
        assert dists, f"{image}: `{top}` is imported but no installed distribution provides it"
        if not any(_norm(d) in locked for d in dists):
            missing[top] = dists
    assert not missing, f"requirements/{lock}.txt lacks what the {image} image imports: {missing}"


def test_the_closure_check_sees_a_missing_distribution() -> None:
    _, third = _closure(("app.api.main",))
    assert "fastapi" in third
    assert "fastapi" not in _locked("infra")  # the same check against the wrong lock would fail


def test_the_api_servers_gunicorn_and_its_worker_class_are_locked() -> None:
    text = (ROOT / "app" / "Dockerfile.api").read_text()
    assert re.search(r'^ENTRYPOINT \["gunicorn"', text, re.M)
    worker_class = re.search(r"^worker_class = \"([A-Za-z_.]+)\"", (ROOT / "gunicorn.conf.py").read_text(), re.M)
    assert worker_class is not None
    assert {"gunicorn", worker_class[1].split(".")[0]} <= _locked("app")
