"""The malware scanner (infra/workloads/clamav.py) as recorded from the real program: deployed in staging and prod,
absent in dev, the api wired to it, clamd's limits >= the api's upload cap, only the api may reach it.

The rendered clamd.conf / freshclam.conf are also parsed by the real ClamAV (`clamconf`, from `make clamav`), so an
option ClamAV does not know fails here, not in a crash-looping pod.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.workloads.clamav import MAX_UPLOAD_MB, PORT, clamd_conf, freshclam_conf, service_host
from stacks.config import ConfigError
from stacks.config.workloads import memory_bytes
from stacks.engine.offline import Record, run_stack
from tests.infra.workloads.graph import DEPLOYMENT, NETPOL, PDB, SERVICE, by_name, containers, name, pod_template

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
GI = 2**30


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def _container(record: Record, workload: str, container: str) -> dict[str, Any]:
    pod = pod_template(by_name(record, DEPLOYMENT, workload))
    return next(c for c in containers(pod) if c["name"] == container)


def _config(record: Record) -> dict[str, str]:
    (cm,) = [r for r in record.of_type(CONFIGMAP) if name(r).startswith("clamav-config-")]
    return cm.inputs["data"]


def _option(conf: str, key: str) -> str:
    match = re.search(rf"^{key} (\S+)$", conf, re.M)
    assert match, f"{key} missing"
    return match.group(1)


def _mb(value: str) -> int:
    assert value.endswith("M"), value
    return int(value[:-1])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_scanner_is_deployed_and_the_api_is_wired_to_it(wl_records: dict[str, Record], stack: str) -> None:
    record = wl_records[stack]
    deployment = by_name(record, DEPLOYMENT, "clamav")
    assert deployment.inputs["spec"]["replicas"] >= 2
    assert by_name(record, PDB, "clamav").inputs["spec"]["maxUnavailable"] == 1
    ports = by_name(record, SERVICE, "clamav").inputs["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [(PORT, PORT)]
    env = _env(_container(record, "api", "api"))
    assert env["CLAMD_HOST"] == service_host("visionrag") and env["CLAMD_PORT"] == str(PORT)
    # A clamd outage refuses uploads; it must not pull the api out of the load balancer.
    assert "malware-scanner" in env["HEALTH_OPTIONAL_DEPENDENCIES"].split(",")
    image = _container(record, "clamav", "clamd")["image"]
    assert record.config.workloads.clamav is not None and image == record.config.workloads.clamav.image
    assert re.fullmatch(r"docker\.io/clamav/clamav:1\.4\.\d+@sha256:[0-9a-f]{64}", image)


def test_dev_has_no_scanner_and_no_scanner_env(wl_records: dict[str, Record]) -> None:
    record = wl_records["dev"]
    assert not [r for r in record.of_type(DEPLOYMENT) if name(r) == "clamav"]
    assert "CLAMD_HOST" not in _env(_container(record, "api", "api"))
    assert _env(_container(record, "api", "api"))["HEALTH_OPTIONAL_DEPENDENCIES"] == "embedder"


def test_clamd_limits_cover_the_api_upload_cap(wl_records: dict[str, Record]) -> None:
    record = wl_records["prod"]
    cap = int(_env(_container(record, "api", "api"))["MAX_UPLOAD_MB"])
    assert cap == MAX_UPLOAD_MB
    conf = _config(record)["clamd.conf"]
    assert _mb(_option(conf, "StreamMaxLength")) >= cap
    assert _mb(_option(conf, "MaxFileSize")) >= cap
    assert _mb(_option(conf, "MaxScanSize")) >= 4 * cap
    assert _option(conf, "AlertExceedsMax") == "yes"  # over-limit content is FOUND, never passed as clean
    assert _option(conf, "TCPSocket") == str(PORT)
    assert "LocalSocket" not in conf and "\nUser " not in conf
    # Each scan spools its stream (and what it extracts) to TemporaryDirectory: a volume sized for all threads.
    pod = pod_template(by_name(record, DEPLOYMENT, "clamav"))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(record, "clamav", "clamd")["volumeMounts"]}
    scratch = volumes[mounts[_option(conf, "TemporaryDirectory")]]["emptyDir"]["sizeLimit"]
    threads = int(_option(conf, "MaxThreads"))
    assert memory_bytes(scratch) >= threads * _mb(_option(conf, "StreamMaxLength")) * 2**20 * 8


def test_clamd_is_probed_with_ping_and_given_minutes_to_load(wl_records: dict[str, Record]) -> None:
    clamd = _container(wl_records["prod"], "clamav", "clamd")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert clamd[probe]["exec"]["command"] == ["clamdcheck.sh"], probe
    startup = clamd["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_memory_is_sized_for_a_concurrent_reload(wl_records: dict[str, Record]) -> None:
    """docs.clamav.net "ClamAV in Docker": ~1.2 GiB per engine, twice that during a reload; 3 GiB minimum."""
    record = wl_records["prod"]
    clamd = _container(record, "clamav", "clamd")["resources"]
    assert memory_bytes(clamd["limits"]["memory"]) >= 3 * GI
    assert memory_bytes(clamd["requests"]["memory"]) >= 2 * GI
    freshclam = _container(record, "clamav", "freshclam")["resources"]
    assert memory_bytes(freshclam["limits"]["memory"]) >= int(1.5 * GI)  # TestDatabases loads a whole engine


def test_scanner_runs_non_root_with_a_read_only_root(wl_records: dict[str, Record]) -> None:
    pod = pod_template(by_name(wl_records["prod"], DEPLOYMENT, "clamav"))
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert sorted(c["name"] for c in containers(pod)) == ["clamd", "freshclam", "seed-signatures"]
    for c in containers(pod):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["runAsUser"] >= 10000


def test_only_the_api_reaches_clamd_and_clamd_reaches_only_https(wl_records: dict[str, Record]) -> None:
    policies = {name(r): r.inputs["spec"] for r in wl_records["prod"].of_type(NETPOL)}
    clamav = policies["allow-clamav"]
    assert clamav["podSelector"]["matchLabels"] == {"visionrag.io/role": "clamav"}
    (ingress,) = clamav["ingress"]
    assert [p["podSelector"]["matchLabels"] for p in ingress["from"]] == [{"visionrag.io/role": "api"}]
    assert [int(p["port"]) for p in ingress["ports"]] == [PORT]
    assert [[int(p["port"]) for p in rule["ports"]] for rule in clamav["egress"]] == [[443]]
    api_to_clamd = [
        rule for rule in policies["allow-api"]["egress"] if [int(p["port"]) for p in rule["ports"]] == [PORT]
    ]
    assert [rule["to"][0]["podSelector"]["matchLabels"] for rule in api_to_clamd] == [{"visionrag.io/role": "clamav"}]


# ---- stack config ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_hardened_stack_without_the_scanner_is_refused(stack: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_stack(stack, overrides={"visionrag:workloads": {"clamav": None}})
    assert "workloads.clamav is required" in str(info.value)


def test_prod_needs_two_scanner_replicas() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("prod", overrides={"visionrag:workloads": {"clamav": {"replicas": 1}}})
    assert "workloads.clamav.replicas must be >= 2 in prod" in str(info.value)


def test_scanner_is_not_autoscaled_and_its_image_is_pinned() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("prod", overrides={"visionrag:workloads": {"clamav": {"maxReplicas": 4}}})
    assert "clamav.maxReplicas" in str(info.value)
    with pytest.raises(ConfigError) as info:
        run_stack("prod", overrides={"visionrag:workloads": {"clamav": {"image": "docker.io/clamav/clamav:1.4.6"}}})
    assert "clamav.image" in str(info.value) and "digest" in str(info.value)


# ---- the rendered files, parsed by the real ClamAV -----------------------------------------------------------
def test_real_clamav_parses_the_rendered_configs(tmp_path: Path) -> None:
    clamconf = shutil.which("clamconf")
    if clamconf is None:
        pytest.fail("clamconf not found: run `make clamav` (apt-get install clamav-daemon)", pytrace=False)
    (tmp_path / "clamd.conf").write_text(clamd_conf())
    (tmp_path / "freshclam.conf").write_text(freshclam_conf())
    out = subprocess.run([clamconf, "-n", "-c", str(tmp_path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "ERROR" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert f'StreamMaxLength = "{MAX_UPLOAD_MB * 1024 * 1024}"' in out.stdout
    # The check itself: an option ClamAV does not know is an error.
    (tmp_path / "clamd.conf").write_text(clamd_conf() + "NoSuchOption yes\n")
    bad = subprocess.run([clamconf, "-n", "-c", str(tmp_path)], capture_output=True, text=True, check=False)
    assert "Unknown option NoSuchOption" in bad.stdout + bad.stderr
