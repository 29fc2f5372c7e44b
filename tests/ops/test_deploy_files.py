"""The deployment files under ops/ checked with real tools, offline.

Kubernetes manifests against the Kubernetes OpenAPI schemas (``kubernetes-validate``,
which bundles them), compose.yaml against the Compose Specification's JSON schema, the
Grafana dashboard against Grafana's dashboard schema (both vendored, tests/ops/schemas),
the nginx site with ``nginx -t``, the systemd unit with ``systemd-analyze verify``. Then
what no schema knows: every setting named is one the gateway has, every probe path and
streamed path is a route, every metric a panel charts is one the gateway exports, and
the timeouts nest (grace period > preStop + drain).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from gateway.metrics import FAMILIES
from gateway.settings import Settings, load_settings
from tests.ops.nginx import check_config, need_nginx, write_config

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
DEPLOY = OPS / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).with_name("schemas")
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate bundles
SETTINGS = {name.upper() for name in Settings.model_fields}
DRAIN_CLOSE_SECONDS = 2  # after SHUTDOWN_TIMEOUT_SECONDS, closing takes at most this
TMP = "/tmp"  # noqa: S108 (the containers' private, writable /tmp)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def routes() -> frozenset[str]:
    """The paths the app serves (built, never started: no database is touched)."""
    from gateway.app import create_app

    app = create_app(Settings(environment="test", database_url="sqlite://unused/x.sqlite3"))
    return frozenset("/" + route.path.lstrip("/") for route in app.router.routes)


def _runtime_script() -> ModuleType:
    path = OPS / "scripts" / "runtime-requirements"
    loader = SourceFileLoader("runtime_requirements", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# --- the image ---------------------------------------------------------------------


def test_the_image_installs_exactly_the_runtime_closure_of_the_lock():
    """ops/scripts/runtime-requirements against the installed packages' own metadata:
    everything the gateway's dependencies require (markers evaluated here) is in it, and
    anything more is only what a marker leaves out on this interpreter."""
    script = _runtime_script()
    pyproject = (ROOT / "pyproject.toml").read_text()
    chosen = script.runtime((ROOT / "requirements.lock").read_text(), pyproject)
    import tomllib
    from importlib.metadata import distribution

    needed: set[str] = set()
    todo = [Requirement(r) for r in tomllib.loads(pyproject)["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        key = (script.normalize(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        needed.add(key[0])
        for text in distribution(requirement.name).requires or []:
            sub = Requirement(text)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    assert needed <= chosen.keys(), needed - chosen.keys()
    for name in chosen.keys() - needed:
        pin = chosen[name][0].split(";", 1)
        assert len(pin) == 2, f"{name} is in the runtime set but nothing at run time needs it"
        assert not Marker(pin[1].strip(" \\")).evaluate(), name
    # and none of the dev tools
    assert not {"pytest", "mypy", "ruff", "uv", "jsonschema"} & chosen.keys()
    assert all(
        any(line.strip().startswith("--hash=sha256:") for line in lines)
        for lines in chosen.values()
    )


def test_the_dockerfile_is_multi_stage_hashed_non_root_and_signal_ready():
    text = (OPS / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(stages) == 2, stages
    assert stages[0] == stages[1], stages
    assert "--require-hashes --no-deps -r /tmp/runtime.txt" in text
    assert "pip check" in text
    final = text[text.rindex("\nFROM ") :]
    user = re.search(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert user is not None
    assert user.group(1).split(":")[0] not in ("root", "0")
    assert re.search(r"^STOPSIGNAL SIGTERM$", final, re.MULTILINE)
    # exec form (JSON arrays): no shell between Docker and the gateway, or its signals
    command = re.search(r"^CMD (.+)$", final, re.MULTILINE)
    assert command is not None
    assert json.loads(command.group(1)) == ["gateway", "serve"]
    health = re.search(r"^\s+CMD (\[.+\])$", final, re.MULTILINE)
    assert health is not None, "HEALTHCHECK ... CMD in exec form"
    probe = re.search(r"127\.0\.0\.1:%s(/\w+)", " ".join(json.loads(health.group(1))))
    assert probe is not None
    assert probe.group(1) == "/livez"
    assert "/livez" in routes()


# --- compose -------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_follows_the_compose_specification():
    assert compose_errors(compose()) == []
    broken = json.loads(json.dumps(compose()))
    broken["services"]["nginx"]["depends_on"]["gateway-1"]["condition"] = "service_ready"
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    assert len(compose_errors(broken)) == 2  # the schema does catch mistakes


def test_compose_runs_two_replicas_after_a_one_shot_migration():
    services = compose()["services"]
    replicas = [name for name in services if name.startswith("gateway-")]
    assert replicas == ["gateway-1", "gateway-2"]
    image = services["migrate"]["image"]
    assert {services[name]["image"] for name in replicas} == {image}
    assert services["migrate"]["command"] == ["gateway", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in replicas:
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        env = service["environment"]
        assert env["AUTO_MIGRATE"] == "false"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        # only nginx, at its fixed address, may say who the client is
        nginx_address = services["nginx"]["networks"]["backend"]["ipv4_address"]
        assert env["TRUSTED_PROXIES"] == nginx_address
        assert set(env) <= SETTINGS, set(env) - SETTINGS
        grace = int(service["stop_grace_period"].removesuffix("s"))
        assert grace > float(env["SHUTDOWN_TIMEOUT_SECONDS"]) + DRAIN_CLOSE_SECONDS
        assert service["stop_signal"] == "SIGTERM"
        assert service["read_only"] is True
        assert TMP in service["tmpfs"]
    for name, service in services.items():
        assert "restart" in service, name
        if name != "migrate":
            assert "test" in service["healthcheck"], name
    assert "./nginx/gateway.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert {
        dependency: condition["condition"]
        for dependency, condition in services["nginx"]["depends_on"].items()
    } == {name: "service_healthy" for name in replicas}


def test_the_env_example_names_every_variable_compose_requires():
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required <= example, required - example


# --- Prometheus --------------------------------------------------------------------------


def test_prometheus_scrapes_each_replica_with_the_metrics_token():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    services = compose()["services"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "gateway"]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"{name}:8000" for name in ("gateway-1", "gateway-2")]
    assert job["metrics_path"] == "/metrics"
    assert "/metrics" in routes()
    # the token reaches Prometheus as a compose secret, at the path the job reads
    assert job["authorization"]["type"] == "Bearer"
    (secret,) = services["prometheus"]["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret['target']}"
    assert compose()["secrets"][secret["source"]] == {"environment": "METRICS_TOKEN"}
    assert services["gateway-1"]["environment"]["METRICS_TOKEN"].startswith("${METRICS_TOKEN")


# --- Grafana ---------------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text()
    )
    return document


def _schema(name: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "grafana" / f"{name}.jsonschema.json").read_text())
    if definition is not None:
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, value: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def test_the_dashboard_follows_grafana_s_schemas():
    assert _errors(_schema("dashboard"), dashboard()) == []
    query = _schema("prometheus")
    for panel in panels():
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert _errors(_schema(panel["type"], "Options"), panel["options"]) == [], panel["title"]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if custom is not None:
            assert _errors(_schema("timeseries", "FieldConfig"), custom) == [], panel["title"]
        for target in panel["targets"]:
            assert _errors(query, target) == [], panel["title"]
    broken = json.loads(json.dumps(dashboard()))
    broken["panels"][1]["gridPos"]["w"] = "wide"
    assert _errors(_schema("dashboard"), broken)  # the schema does catch mistakes


def test_the_dashboard_reads_the_provisioned_datasource():
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    (source,) = provisioned["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "gateway.yaml").read_text()
    )
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts


_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "and", "or", "unless", "le", "instance", "job",
}  # fmt: skip


def _series_names() -> dict[str, tuple[str, ...]]:
    """Every sample name the gateway exports, with the labels it carries."""
    names: dict[str, tuple[str, ...]] = {}
    for family in FAMILIES:
        if family.kind == "histogram":
            for suffix in ("_bucket", "_count", "_sum"):
                names[family.name + suffix] = family.labels
        else:
            names[family.name] = family.labels
    return names


def test_every_query_reads_metrics_and_labels_the_gateway_exports():
    exported = _series_names()
    labels = {label for family in FAMILIES for label in family.labels}
    charted: set[str] = set()
    for panel in panels():
        for target in panel["targets"]:
            expr = re.sub(r'"[^"]*"', '""', target["expr"])  # label values
            expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
            for word in _IDENTIFIER.findall(expr):
                if word in exported:
                    charted.add(word)
                elif word not in _PROMQL_WORDS and not word.startswith("__"):
                    assert word in labels, f"{panel['title']}: {word} is not exported"
            for legend in re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]):
                assert legend in labels | {"instance", "le"}, (panel["title"], legend)
    families = {name.removesuffix("_bucket") for name in charted}
    missing = {f.name for f in FAMILIES} - families - {n.removesuffix("_count") for n in families}
    assert not missing, f"families no panel charts: {missing}"


# --- Kubernetes ------------------------------------------------------------------------------


@cache
def manifests() -> dict[str, list[dict[str, Any]]]:
    return {path.name: load_yaml(path) for path in sorted(K8S.glob("*.yaml"))}


def kind(name: str) -> dict[str, Any]:
    (document,) = [doc for docs in manifests().values() for doc in docs if doc["kind"] == name][:1]
    return document


def test_every_manifest_is_valid_against_the_kubernetes_schemas():
    checked = 0
    for _name, documents in manifests().items():
        for document in documents:
            if document["kind"] == "Kustomization":
                continue
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            checked += 1
    assert checked >= 9
    broken = json.loads(json.dumps(kind("Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_secret_example():
    (kustomization,) = manifests()["kustomization.yaml"]
    listed = set(kustomization["resources"])
    assert listed == set(manifests()) - {"kustomization.yaml", "secret.example.yaml"}
    kubectl = shutil.which("kubectl")
    if kubectl is not None:  # renders offline when present
        rendered = subprocess.run(
            [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
        )
        assert rendered.returncode == 0, rendered.stderr
        for document in yaml.safe_load_all(rendered.stdout):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_deployment_drains_before_it_is_killed():
    deployment = kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = kind("ConfigMap")["data"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    budget = float(pre_stop[1]) + float(config["SHUTDOWN_TIMEOUT_SECONDS"]) + DRAIN_CLOSE_SECONDS
    assert pod["terminationGracePeriodSeconds"] > budget
    probes = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": "/livez",
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz?exclude=redis",
    }
    assert {path.partition("?")[0] for path in probes.values()} <= routes()
    rollout = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


def test_pods_run_non_root_on_a_read_only_root_file_system():
    for workload in (kind("Deployment"), kind("Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            # the one place the gateway writes with PostgreSQL: worker metrics, in $TMPDIR
            assert {m["mountPath"] for m in container["volumeMounts"]} == {TMP}
            assert "memory" in container["resources"]["limits"]
            sources = {
                ref.get("configMapRef", ref.get("secretRef"))["name"]
                for ref in container["envFrom"]
            }
            assert sources == {"commerce-gateway"}
    assert kind("Job")["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "gateway",
        "migrate",
    ]


def test_the_settings_are_ones_the_gateway_has_and_load():
    config = kind("ConfigMap")["data"]
    secret = kind("Secret")["stringData"]
    assert set(config) | set(secret) <= SETTINGS, (set(config) | set(secret)) - SETTINGS
    assert secret["DATABASE_URL"].startswith("postgres://")  # never the SQLite default
    assert config["AUTO_MIGRATE"] == "false"
    env = {key.lower(): value for key, value in {**config, **secret}.items() if value != ""}
    settings = load_settings(**env)
    assert not settings.is_sqlite
    assert not settings.should_migrate


def test_service_hpa_pdb_and_ingress_point_at_the_pods():
    deployment = kind("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = kind("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    )
    hpa = kind("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] >= 2
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    ingresses = {doc["metadata"]["name"]: doc for doc in manifests()["ingress.yaml"]}
    port = service["spec"]["ports"][0]["name"]
    for ingress in ingresses.values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend == {"name": service["metadata"]["name"], "port": {"name": port}}
    streams = ingresses["commerce-gateway-streams"]
    notes = streams["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    streamed = {p["path"] for r in streams["spec"]["rules"] for p in r["http"]["paths"]}
    assert streamed == {"/api/v1/events", "/api/v1/realtime", "/graphql"}
    assert streamed <= routes()


# --- nginx -----------------------------------------------------------------------------------


def test_nginx_accepts_the_site(tmp_path):
    binary = need_nginx()
    main = write_config(tmp_path, [8001, 8002], "127.0.0.1:8080")
    checked = check_config(binary, main)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
    assert "test is successful" in checked.stderr


def test_the_site_streams_the_gateway_s_event_paths():
    text = (DEPLOY / "nginx" / "gateway.conf").read_text()
    locations = dict(re.findall(r"location = (\S+) \{(.*?)\n    \}", text, re.DOTALL))
    assert set(locations) == {"/api/v1/events", "/api/v1/realtime", "/graphql"}
    assert set(locations) <= routes()
    assert "proxy_buffering off;" in locations["/api/v1/events"]
    for body in locations.values():
        assert "proxy_read_timeout 1h;" in body
    # the headers the gateway reads (gateway/edge.py): X-Forwarded-For, X-Forwarded-Proto
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_set_header Connection $gateway_connection;" in text


# --- systemd ---------------------------------------------------------------------------------


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "commerce-gateway.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_systemd_unit_stops_gracefully_and_is_confined():
    values = unit()
    env = {
        key: value
        for key, _, value in (
            line.partition("=")
            for line in (DEPLOY / "systemd" / "commerce-gateway.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    assert values["Type"] == ["exec"]
    assert values["KillSignal"] == ["SIGTERM"]
    stop = int(values["TimeoutStopSec"][0])
    assert stop > float(env["SHUTDOWN_TIMEOUT_SECONDS"]) + DRAIN_CLOSE_SECONDS
    assert values["Restart"] == ["on-failure"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/commerce-gateway",
        "EnvironmentFile": "/etc/commerce-gateway/gateway.env",
    }.items():
        assert values[key] == [value], key
    assert load_settings(**{k.lower(): v for k, v in env.items()}).trusted_proxies


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # verify insists that ExecStart's program exists: point it at one that does
    text = (DEPLOY / "systemd" / "commerce-gateway.service").read_text()
    assert text.count("ExecStart=/opt/commerce-gateway/bin/gateway serve") == 1
    copy = tmp_path / "commerce-gateway.service"
    copy.write_text(text.replace("/opt/commerce-gateway/bin/gateway", sys.executable))
    checked = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [
        line for line in (checked.stdout + checked.stderr).splitlines() if copy.name in line
    ]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert complaints == [], checked.stdout + checked.stderr
