"""The contract between the deployed pods (infra/workloads) and the app processes they run.

Both sides were written in parallel; this judges the recorded prod stack against the app's own settings classes:
- every env var a container gets is a setting its process reads (field name, alias or env_prefix + name),
- every mounted secret file is named after a setting (pydantic-settings reads one file per field),
- the settings the app needs outside dev are provided, and the app's own loader accepts what the pod gets
  (environment=prod, so the "unsafe outside dev" validators run),
- commands start the processes the images start, ports and probes match ARCHITECTURE.md and the settings,
- in-cluster URLs name Services that exist, on the ports those Services expose.

Renaming a setting on either side makes one of these fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from app.api.settings import Settings, load_settings
from app.embedder.settings import EmbedderSettings, get_embedder_settings
from app.ops.settings import OpsSettings, get_ops_settings
from app.worker.settings import WorkerSettings, get_worker_settings
from policies.helm_values import chart_defaults, coalesce
from stacks.engine.offline import Record
from tests.infra.workloads.graph import (
    CRONJOB,
    DEPLOYMENT,
    RELEASE,
    SERVICE,
    STATEFULSET,
    by_name,
    containers,
    pod_template,
)

ROOT = Path(__file__).resolve().parents[3]

# Env vars that are not app settings, each with the reader that consumes it.
NOT_SETTINGS = {
    # Read by the settings loaders to point pydantic-settings' secrets_dir at the mounted Secret files
    # (test_the_app_loads_what_the_pod_gets proves the loader honours it).
    "SETTINGS_SECRETS_DIR",
    # Read by huggingface_hub / transformers: the embedder never reaches the hub.
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
}

# Realistic values for the files the ExternalSecrets render (formats as the templates in app_secrets.py produce).
SECRET_FILE_VALUES = {
    "qdrant_api_key": "q-4f1c9e0b7a2d4c55b1e3",
    "openai_api_key": "sk-live-2b7f9d0c4e1a4f6e8c3d",
    "redis_url": "rediss://:tok-8d3e1f0a9b7c@master.visionrag-prod.cache.amazonaws.com:6379/0",
    # The stack's own Cognito pool (infra/identity.py): its issuer, JWKS URL and app client id.
    "auth_issuer_url": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E",
    "auth_audience": "4f1n7o3u2p8t6r5e9a0c1l2i3e",
    "auth_jwks_url": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E/.well-known/jwks.json",
    "auth_algorithms": "RS256,ES256",
    "auth_provider": "cognito",
}

# Service DNS, or a pod's DNS under a headless Service (pod.service.namespace.svc...).
URL = re.compile(r"https?://((?:[a-z0-9-]+\.)*?)([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)")


@dataclass(frozen=True)
class Process:
    kind: str  # recorded resource type
    obj: str  # Deployment/CronJob name
    container: str
    settings: type[BaseSettings]
    load: Callable[[], BaseSettings]
    # Settings whose defaults only work on a laptop (loopback hosts, :memory:, unsuffixed bucket names).
    required: frozenset[str]
    # Settings that must equal the container's named port.
    ports: tuple[tuple[str, str], ...] = ()


def _fresh(getter: Any) -> Callable[[], BaseSettings]:
    def load() -> BaseSettings:
        getter.cache_clear()
        try:
            settings: BaseSettings = getter()
            return settings
        finally:
            getter.cache_clear()

    return load


PROCESSES = {
    "api": Process(
        DEPLOYMENT,
        "api",
        "api",
        Settings,
        load_settings,
        frozenset(
            {
                "environment",
                "redis_url",
                "s3_endpoint",
                "s3_auth",
                "s3_region",
                "s3_bucket_pages",
                "s3_bucket_audit",
                "s3_sse",
                "s3_kms_key_id",
                "qdrant_url",
                "qdrant_api_key",
                "embedder_url",
                "auth_issuer_url",
                "auth_audience",
                "auth_jwks_url",
                "trusted_proxies",
                "allowed_origins",
            }
        ),
        (("metrics_port", "metrics"),),
    ),
    "worker": Process(
        DEPLOYMENT,
        "worker",
        "worker",
        WorkerSettings,
        _fresh(get_worker_settings),
        frozenset(
            {
                "environment",
                "redis_url",
                "s3_endpoint",
                "s3_auth",
                "s3_region",
                "s3_bucket_pages",
                "s3_sse",
                "s3_kms_key_id",
                "qdrant_url",
                "qdrant_api_key",
                "qdrant_replication_factor",
                "embedder_url",
            }
        ),
        (("worker_metrics_port", "metrics"),),
    ),
    "embedder": Process(
        DEPLOYMENT,
        "embedder",
        "embedder",
        EmbedderSettings,
        _fresh(get_embedder_settings),
        frozenset({"environment", "model", "device", "port"}),
        (("port", "http"),),
    ),
    # The worker's init container; app/ops/collection.py main() loads get_worker_settings().
    "collection-migrate": Process(
        DEPLOYMENT,
        "worker",
        "collection-migrate",
        WorkerSettings,
        _fresh(get_worker_settings),
        frozenset(
            {
                "environment",
                "qdrant_url",
                "qdrant_api_key",
                "qdrant_collection",
                "qdrant_replication_factor",
                "s3_sse",
                "s3_kms_key_id",
            }
        ),
    ),
    # app/ops/drill.py main() loads get_ops_settings() too (prod's monthly restore drill).
    "restore-drill": Process(
        CRONJOB,
        "restore-drill",
        "restore-drill",
        OpsSettings,
        _fresh(get_ops_settings),
        frozenset(
            {
                "environment",
                "qdrant_url",
                "qdrant_node_urls",
                "qdrant_api_key",
                "qdrant_collection",
                "s3_region",
                "s3_auth",
                "s3_sse",
                "s3_kms_key_id",
                "s3_bucket_snapshots",
                "s3_bucket_audit",
                "audit_actor",
            }
        ),
    ),
    # app/ops/snapshots.py main() loads get_ops_settings().
    "snapshots": Process(
        CRONJOB,
        "snapshots",
        "snapshots",
        OpsSettings,
        _fresh(get_ops_settings),
        frozenset(
            {
                "environment",
                "qdrant_url",
                "qdrant_node_urls",
                "qdrant_api_key",
                "qdrant_collection",
                "s3_region",
                "s3_bucket_snapshots",
                "snapshot_sse",
                "snapshot_kms_key_id",
                "snapshot_keep_last",
            }
        ),
    ),
}


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Upper-cased env var name -> field, exactly as pydantic-settings resolves them for this class."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    assert not cls.model_config.get("case_sensitive"), f"{cls.__name__}: the contract assumes case-insensitive env"
    names: dict[str, str] = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        if alias is None and info.alias:
            alias = info.alias
        if alias is None:
            names[(prefix + field).upper()] = field
        elif isinstance(alias, str):
            names[alias.upper()] = field
        elif isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.upper()] = field
        elif isinstance(alias, AliasPath):
            names[str(alias.path[0]).upper()] = field
    return names


def _container(record: Record, p: Process) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = pod_template(by_name(record, p.kind, p.obj))
    found = [c for c in containers(pod) if c["name"] == p.container]
    assert len(found) == 1, f"{p.obj}: no container named {p.container!r}"
    return pod, found[0]


def _env(container: dict[str, Any]) -> dict[str, str]:
    env = {}
    for e in container.get("env") or []:
        assert "value" in e, f"{container['name']}: env {e['name']} has no literal value"
        env[e["name"]] = str(e["value"])
    return env


def _secret_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """File name -> directory, for every projected Secret file mounted into the container."""
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts") or []}
    files: dict[str, str] = {}
    for v in pod["spec"].get("volumes") or []:
        if v["name"] not in mounts or "projected" not in v:
            continue
        for source in v["projected"]["sources"]:
            for item in source["secret"]["items"]:
                files[item["path"]] = mounts[v["name"]]
    return files


def _ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports") or []}


@pytest.fixture(scope="module")
def prod(records: dict[str, Record]) -> Record:
    return records["prod"]


@pytest.mark.parametrize("process", list(PROCESSES))
def test_every_env_var_is_a_setting_the_process_reads(prod: Record, process: str) -> None:
    p = PROCESSES[process]
    _, container = _container(prod, p)
    accepted = env_names(p.settings)
    unknown = sorted(n for n in _env(container) if n not in accepted and n not in NOT_SETTINGS)
    assert not unknown, (
        f"{p.obj}: env {unknown} are not fields of {p.settings.__name__} (extra='ignore' would drop them silently)"
    )


@pytest.mark.parametrize("process", list(PROCESSES))
def test_every_secret_file_is_named_after_a_setting(prod: Record, process: str) -> None:
    p = PROCESSES[process]
    pod, container = _container(prod, p)
    files = _secret_files(pod, container)
    env = _env(container)
    accepted = {n.lower() for n in env_names(p.settings)}
    for name, directory in files.items():
        assert name in accepted, f"{p.obj}: secret file {name!r} is not a setting of {p.settings.__name__}"
        assert env.get("SETTINGS_SECRETS_DIR") == directory, f"{p.obj}: secrets at {directory}, loader not told"


@pytest.mark.parametrize("process", list(PROCESSES))
def test_settings_needed_outside_dev_are_provided(prod: Record, process: str) -> None:
    p = PROCESSES[process]
    pod, container = _container(prod, p)
    fields = env_names(p.settings)
    missing_fields = sorted(p.required - set(fields.values()))
    assert not missing_fields, f"{p.settings.__name__} no longer has {missing_fields}: update the pods and this test"
    provided = {fields[n] for n in _env(container) if n in fields}
    provided |= {fields[f.upper()] for f in _secret_files(pod, container) if f.upper() in fields}
    missing = sorted(p.required - provided)
    assert not missing, f"{p.obj}: {missing} are neither env nor a secret file (the laptop defaults would be used)"


@pytest.mark.parametrize("process", list(PROCESSES))
def test_the_app_loads_what_the_pod_gets(
    prod: Record, process: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's own loader, given exactly the pod's env and secret files, accepts them as prod settings."""
    p = PROCESSES[process]
    pod, container = _container(prod, p)
    env = _env(container)
    files = _secret_files(pod, container)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name in files:
        (secrets_dir / name).write_text(SECRET_FILE_VALUES[name])
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.upper() in env_names(p.settings) or name in NOT_SETTINGS:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(secrets_dir) if name == "SETTINGS_SECRETS_DIR" else value)

    settings = p.load()
    assert isinstance(settings, p.settings)
    assert settings.environment == prod.config.tier == "prod"  # type: ignore[attr-defined]
    for name in files:
        value = getattr(settings, name)
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        expected = SECRET_FILE_VALUES[name]
        assert value == (expected.split(",") if isinstance(value, list) else expected), f"{p.obj}: {name} not read"
    if "s3_auth" in p.required:
        assert settings.s3_auth == "iam"  # type: ignore[attr-defined]
    ports = _ports(container)
    for field, port_name in p.ports:
        assert getattr(settings, field) == ports[port_name], f"{p.obj}: {field} != containerPort {port_name}"
    if process == "api":
        api = settings
        assert isinstance(api, Settings)
        assert api.gunicorn_bind.rsplit(":", 1)[1] == str(ports["http"])
        assert api.qdrant_api_key is not None and api.openai_api_key is not None


def _probe(container: dict[str, Any], kind: str) -> tuple[str, int, str | None]:
    probe = container[f"{kind}Probe"]
    if "httpGet" in probe:
        return "http", int(probe["httpGet"]["port"]), probe["httpGet"]["path"]
    return "tcp", int(probe["tcpSocket"]["port"]), None


def test_ports_and_probes_match_the_service_contracts(prod: Record) -> None:
    """ARCHITECTURE.md's service table."""
    _, api = _container(prod, PROCESSES["api"])
    assert _ports(api) == {"http": 8000, "metrics": 9090}
    assert _probe(api, "readiness") == ("http", 8000, "/health")
    assert _probe(api, "liveness")[:2] == ("tcp", 8000)

    _, worker = _container(prod, PROCESSES["worker"])
    assert _ports(worker) == {"metrics": 9091}
    assert _probe(worker, "liveness")[:2] == ("tcp", 9091)

    _, embedder = _container(prod, PROCESSES["embedder"])
    assert _ports(embedder) == {"http": 7000}
    assert _probe(embedder, "startup") == ("http", 7000, "/health")
    assert _probe(embedder, "readiness") == ("http", 7000, "/health")

    qdrant_pod = pod_template(by_name(prod, STATEFULSET, "qdrant"))
    (qdrant,) = qdrant_pod["spec"]["containers"]
    assert {"http": 6333, "grpc": 6334}.items() <= _ports(qdrant).items()
    assert _probe(qdrant, "readiness") == ("http", 6333, "/readyz")
    assert _probe(qdrant, "liveness") == ("http", 6333, "/livez")
    env = {e["name"]: e["value"] for e in qdrant["env"]}
    assert env["QDRANT__SERVICE__HTTP_PORT"] == "6333" and env["QDRANT__SERVICE__GRPC_PORT"] == "6334"
    # The start script exports the API key from the file the projected Secret puts there.
    files = _secret_files(qdrant_pod, qdrant)
    script = " ".join(qdrant["args"])
    assert "qdrant_api_key" in files
    assert f'QDRANT__SERVICE__API_KEY="$(cat {files["qdrant_api_key"]}/qdrant_api_key)"' in script


def _entrypoint(dockerfile: str) -> list[str]:
    text = (ROOT / "app" / dockerfile).read_text()
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"{dockerfile}: no exec-form ENTRYPOINT"
    entry: list[str] = json.loads(match.group(1))
    return entry


def _module(command: list[str]) -> str:
    """The module a `python -m <module> ...` command runs."""
    assert command[:2] == ["python", "-m"], command
    return command[2]


def test_commands_start_the_processes_the_images_start(prod: Record) -> None:
    _, api = _container(prod, PROCESSES["api"])
    _, worker = _container(prod, PROCESSES["worker"])
    assert api["command"] == _entrypoint("Dockerfile.api")
    assert worker["command"] == _entrypoint("Dockerfile.worker")
    assert importlib.util.find_spec(_module(worker["command"])) is not None, worker["command"]
    # The embedder keeps its image's entrypoint.
    _, embedder = _container(prod, PROCESSES["embedder"])
    assert "command" not in embedder or embedder["command"] == _entrypoint("Dockerfile.embedder")


def test_snapshot_command_is_a_subcommand_the_ops_cli_accepts(prod: Record, capsys: pytest.CaptureFixture) -> None:
    from app.ops.snapshots import main

    _, job = _container(prod, PROCESSES["snapshots"])
    command = job["command"]
    assert _module(command) == "app.ops.snapshots"
    # argparse exits 0 on `<subcommand> --help` only when the subcommand exists (2 otherwise).
    with pytest.raises(SystemExit) as exited:
        main([*command[3:], "--help"])
    assert exited.value.code == 0, capsys.readouterr().err


def test_restore_drill_command_is_what_the_ops_cli_accepts(prod: Record, capsys: pytest.CaptureFixture) -> None:
    from app.ops.drill import _parser

    _, job = _container(prod, PROCESSES["restore-drill"])
    command = job["command"]
    assert _module(command) == "app.ops.drill"
    args = _parser().parse_args(command[3:])  # argparse exits 2 on an unknown flag
    drill = prod.config.workloads.restore_drill
    assert (args.queries, args.k, args.min_overlap, args.max_drift) == (
        drill.queries,
        drill.top_k,
        drill.min_overlap,
        drill.max_drift,
    )
    assert _env(job)["AUDIT_ACTOR"] == "system:serviceaccount:visionrag:restore-drill"


def test_workers_start_only_after_the_collection_migration(prod: Record, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside dev the worker refuses to start without the collection; the init container creates it first."""
    from app.ops import collection

    pod = pod_template(by_name(prod, DEPLOYMENT, "worker"))
    (init,) = pod["spec"]["initContainers"]
    (worker,) = pod["spec"]["containers"]
    assert init["name"] == "collection-migrate" and init["image"] == worker["image"]
    assert _module(init["command"]) == "app.ops.collection"
    # Same settings as the worker (minus its metrics port): the collection is created with the stack's replication.
    assert _env(init) == {k: v for k, v in _env(worker).items() if k != "WORKER_METRICS_PORT"}
    assert _env(init)["QDRANT_REPLICATION_FACTOR"] == str(prod.config.workloads.qdrant_replication_factor)
    assert _secret_files(pod, init) == _secret_files(pod, worker)

    ran: list[str] = []

    async def fake_run(command: str, settings: object) -> dict[str, object]:
        ran.append(command)
        return {"command": command}

    monkeypatch.setattr(collection, "run", fake_run)
    monkeypatch.setattr(collection, "WorkerSettings", lambda: None)
    # The migration is an audited ops command: the pod names the audit bucket and its ServiceAccount.
    _, api = _container(prod, PROCESSES["api"])
    assert _env(init)["S3_BUCKET_AUDIT"] == _env(api)["S3_BUCKET_AUDIT"]  # the one audit bucket
    assert _env(init)["AUDIT_ACTOR"] == f"system:serviceaccount:visionrag:{pod['spec']['serviceAccountName']}"
    # ...and so does every indexing job the worker runs: its outcome event's actor (app/worker/job_audit.py).
    assert _env(worker)["AUDIT_ACTOR"] == "system:serviceaccount:visionrag:worker"
    written: list[dict[str, Any]] = []

    class _Memory:
        async def put_bytes(self, key: str, data: bytes, content_type: str = "") -> str:
            written.append(json.loads(data))
            return ""

    def memory_audit(settings: object, *, action: str, target: str, **details: Any) -> Any:
        from app.core.audit import AuditLog, audited

        return audited(AuditLog(_Memory()), actor="test", action=action, target=target, **details)

    monkeypatch.setattr(collection, "command_audit", memory_audit)
    assert collection.main(init["command"][3:]) == 0 and ran == ["migrate"]
    assert [(e["action"], e["outcome"]) for e in written] == [
        ("ops.collection.migrate", "started"),
        ("ops.collection.migrate", "succeeded"),
    ]


def test_in_cluster_urls_name_services_on_their_ports(prod: Record) -> None:
    services = {
        (r.inputs["metadata"]["name"], r.inputs["metadata"]["namespace"]): {
            int(p["port"]) for p in r.inputs["spec"]["ports"]
        }
        for r in prod.of_type(SERVICE)
    }
    # The collector's Service is rendered by its Helm chart: its name and ports from chart defaults + our values.
    for release in prod.of_type(RELEASE):
        inputs = release.inputs
        if inputs["chart"] == "opentelemetry-collector":
            merged = coalesce(inputs["values"], chart_defaults(inputs["chart"], inputs["version"]))
            ports = {int(p["servicePort"]) for p in merged["ports"].values() if p.get("enabled")}
            services[(merged["fullnameOverride"], inputs["namespace"])] = ports
    seen = 0
    for process in PROCESSES.values():
        _, container = _container(prod, process)
        for name, value in _env(container).items():
            for _, host, namespace, port in re.findall(URL, value):
                seen += 1
                assert (host, namespace) in services, f"{process.obj}: {name} names no Service {host}.{namespace}"
                assert int(port) in services[(host, namespace)], f"{process.obj}: {name} port {port} not exposed"
    assert seen >= 4  # api and worker: qdrant + embedder each; snapshots: qdrant
