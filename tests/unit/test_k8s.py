"""deploy/k8s: every kustomization rendered by `kubectl kustomize`, each object validated
against the Kubernetes schemas (strict: unknown fields fail), and the rules the manifests
must keep checked object by object: probes, resources, security contexts, autoscaling,
disruption budgets, Service selectors, graceful termination, the migration Job, the gateway
configuration rendered from nginx/, secrets kept out of the repository, and the overlays'
data stores."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import kubernetes_validate
import pytest
import yaml

from identity_service.settings import IdentitySettings
from learning_service.settings import LearningSettings
from recommendation_service.settings import RecommendationSettings
from v5_cluster.k8s import (
    GATEWAY_PORT,
    K8S_GATEWAY_DIR,
    OPENAPI_PATH,
    k8s_gateway_files,
    render_k8s_gateway,
    write_or_check_k8s_gateway,
)
from v5_shared.cli import build_parser
from v5_shared.migrate import bundled_migrations
from v5_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NGINX = ROOT / "nginx"
WAIT_SCRIPT = K8S / "base" / "services" / "wait_for_schema.py"

BASE, DEV, PROD = "base", "overlays/dev", "overlays/prod"
RENDERS = (BASE, DEV, PROD)
# The oldest Kubernetes the manifests support (the preStop sleep action is on by default
# from 1.30) and the newest whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ("1.30", "1.37")
NAMESPACE = "v5"

SERVICES = ("identity", "conversation", "recommendation", "learning")
SERVICE_PORT = 8000
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

# Every Secret the manifests may refer to, with its keys (deploy/k8s/README.md, Secrets).
SECRET_KEYS = {
    "v5-database": {"DATABASE_PASSWORD"},
    "v5-redis": {"REDIS_PASSWORD"},
    "v5-jwt-private-key": {"jwt_private.pem"},
    "v5-jwt-public-key": {"jwt_public.pem"},
}
PRIVATE_KEY_SECRET = "v5-jwt-private-key"
PUBLIC_KEY_SECRET = "v5-jwt-public-key"

# Environment names the services read: the settings models' fields, upper-cased.
SETTINGS_ENV = {
    name.upper()
    for model in (Settings, IdentitySettings, LearningSettings, RecommendationSettings)
    for name in model.model_fields
}
# Not settings: the passwords that Kubernetes places into DATABASE_URL and REDIS_URL.
COMPOSITION_ENV = {"DATABASE_PASSWORD", "REDIS_PASSWORD"}
# The official images' own variables.
IMAGE_ENV = {
    "postgres": {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "PGDATA"},
    "redis": {"REDIS_PASSWORD", "REDISCLI_AUTH"},
    "nginx": set(),
}

_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SENTINEL_URL = re.compile(
    r"redis\+sentinel://(?:[^@/]*@)?(?P<hosts>[^/@]+)/(?P<master>[A-Za-z0-9_.-]+)/(?P<db>\d+)"
)


# --------------------------------------------------------------------------- rendering


@cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render deploy/k8s (kubectl kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(path: str) -> list[dict[str, Any]]:
    return list(_render(path))


def ident(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"want one {kind}/{name}, found {len(found)}"
    return found[0]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in containers(workload) if c["name"] == name]
    assert len(found) == 1, f"{ident(workload)}: want one container {name!r}"
    return found[0]


def app(objects: list[dict[str, Any]], service: str) -> dict[str, Any]:
    return container(find(objects, "Deployment", service), "app")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def image_name(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference."""
    repository, _, tag = image.rpartition(":")
    if "/" in tag or not repository:  # a registry port, not a tag
        return image, ""
    return repository, tag


def is_v5_image(image: str, service: str | None = None) -> bool:
    repository, _ = image_name(image)
    names = SERVICES if service is None else (service,)
    return any(repository == f"v5/{n}" or repository.endswith(f"/v5/{n}") for n in names)


def configmap_data(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", name).get("data", {})
    return data


def environment(objects: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, Any]:
    """A container's variables as the kubelet would define them: envFrom first (ConfigMap
    values; a Secret's keys as ("secret", name, key)), then env in order."""
    env: dict[str, Any] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmap_data(objects, source["configMapRef"]["name"]))
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            for key in SECRET_KEYS.get(name, set()):
                env[key] = ("secret", name, key)
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            env[item["name"]] = ("secret", ref["name"], ref["key"]) if ref else ("ref", item)
    return env


def setting(env: dict[str, Any], name: str) -> Any:
    """A service setting as the process sees it: from the environment, else its default."""
    if name.upper() in env:
        return env[name.upper()]
    return Settings.model_fields[name].default


def url(value: str) -> Any:
    """A URL whose $(VAR) references stand for URL-safe text."""
    return urlsplit(_VAR_REFERENCE.sub("placeholder", value))


def probe_path(probe: dict[str, Any] | None) -> str | None:
    return None if probe is None else probe.get("httpGet", {}).get("path")


def container_ports(workload: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for c in containers(workload, init=False):
        for port in c.get("ports", []):
            ports[port["containerPort"]] = port["containerPort"]
            if "name" in port:
                ports[port["name"]] = port["containerPort"]
    return ports


def secret_references(workload: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(secret name, key or None for the whole Secret) for every use in a pod."""
    spec = pod_spec(workload)
    for c in containers(workload):
        for source in c.get("envFrom", []):
            if "secretRef" in source:
                yield source["secretRef"]["name"], None
        for item in c.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield ref["name"], ref["key"]
    for volume in spec.get("volumes", []):
        sources = [volume] + [s for s in volume.get("projected", {}).get("sources", [])]
        for source in sources:
            secret = source.get("secret")
            if secret:
                name = secret.get("secretName") or secret.get("name")
                items = secret.get("items")
                if items:
                    for item in items:
                        yield name, item["key"]
                else:
                    yield name, None


def mounted_secret_paths(workload: dict[str, Any], c: dict[str, Any]) -> dict[str, str]:
    """mount path -> secret name, for the container's Secret volumes."""
    secrets = {
        v["name"]: v["secret"]["secretName"]
        for v in pod_spec(workload).get("volumes", [])
        if "secret" in v
    }
    return {
        m["mountPath"]: secrets[m["name"]]
        for m in c.get("volumeMounts", [])
        if m["name"] in secrets
    }


def emptydir_mounts(workload: dict[str, Any], c: dict[str, Any]) -> set[str]:
    empty = {v["name"] for v in pod_spec(workload).get("volumes", []) if "emptyDir" in v}
    return {m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in empty}


def under(path: str, directories: set[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in directories)


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (CPU or memory) as a number."""
    text = str(value)
    suffixes = {
        "m": 1e-3,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
    }
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def pre_stop_seconds(c: dict[str, Any]) -> int:
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    if command[:1] == ["sleep"] and len(command) == 2:
        return int(command[1])
    return 0


def hpas_for(objects: list[dict[str, Any]], deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        h
        for h in of_kind(objects, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]


def gateway_conf(objects: list[dict[str, Any]]) -> str:
    deployment = find(objects, "Deployment", "gateway")
    names = {v["configMap"]["name"] for v in pod_spec(deployment)["volumes"] if "configMap" in v}
    assert len(names) == 1, f"the gateway should mount one ConfigMap, mounts {names}"
    return configmap_data(objects, names.pop())["gateway.conf"]


# --------------------------------------------------------------------------- every render


@pytest.mark.parametrize("path", RENDERS)
def test_every_object_validates_against_the_kubernetes_schemas(path: str) -> None:
    objects = render(path)
    assert objects, f"{path} rendered nothing"
    failures = []
    for obj in objects:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(part) for part in exc.path)
                failures.append(f"{ident(obj)} (Kubernetes {version}) at {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                failures.append(f"{ident(obj)}: {exc.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", RENDERS)
def test_every_workload_has_its_objects(path: str) -> None:
    objects = render(path)
    for name in (*SERVICES, "gateway"):
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            find(objects, kind, name)
    find(objects, "Job", "v5-migrate")
    namespace = find(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{ident(obj)}: namespace"
        assert obj["metadata"]["labels"].get("app.kubernetes.io/part-of") == "v5", ident(obj)
    for workload in workloads(objects):
        assert pod_labels(workload).get("app.kubernetes.io/part-of") == "v5", ident(workload)
    names = [ident(obj) for obj in objects]
    assert len(names) == len(set(names)), "duplicate objects"


@pytest.mark.parametrize("path", RENDERS)
def test_pods_run_unprivileged(path: str) -> None:
    failures = []
    for workload in workloads(render(path)):
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            failures.append(f"{ident(workload)}: pod runAsNonRoot")
        if not isinstance(pod.get("runAsUser"), int) or pod["runAsUser"] == 0:
            failures.append(f"{ident(workload)}: pod runAsUser must be a non-zero uid")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            failures.append(f"{ident(workload)}: pod seccompProfile RuntimeDefault")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                failures.append(f"{ident(workload)}: {key}")
        if spec.get("automountServiceAccountToken") is not False:
            failures.append(f"{ident(workload)}: automountServiceAccountToken must be false")
        if any("hostPath" in volume for volume in spec.get("volumes", [])):
            failures.append(f"{ident(workload)}: hostPath volume")
        for c in containers(workload):
            where = f"{ident(workload)} container {c['name']}"
            context = c.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                failures.append(f"{where}: allowPrivilegeEscalation false")
            if context.get("readOnlyRootFilesystem") is not True:
                failures.append(f"{where}: readOnlyRootFilesystem true")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                failures.append(f"{where}: capabilities drop [ALL]")
            if context.get("capabilities", {}).get("add"):
                failures.append(f"{where}: capabilities added")
            if context.get("privileged"):
                failures.append(f"{where}: privileged")
            if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
                failures.append(f"{where}: overrides the pod's non-root user")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", RENDERS)
def test_every_container_has_requests_and_limits(path: str) -> None:
    failures = []
    for workload in workloads(render(path)):
        for c in containers(workload):
            where = f"{ident(workload)} container {c['name']}"
            resources = c.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                if request is None or limit is None:
                    failures.append(f"{where}: {resource} request and limit")
                elif quantity(request) > quantity(limit):
                    failures.append(f"{where}: {resource} request {request} > limit {limit}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", RENDERS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_deployment(path: str, service: str) -> None:
    objects = render(path)
    deployment = find(objects, "Deployment", service)
    spec = pod_spec(deployment)
    c = app(objects, service)
    env = environment(objects, c)

    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": service}
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(deployment))
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the count"
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0, "a rollout must not lower capacity"

    assert is_v5_image(c["image"], service), f"{service} runs {c['image']}"
    for other in containers(deployment):
        assert other["image"] == c["image"], f"{service}: {other['name']} runs another image"

    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": SERVICE_PORT}
    assert str(env.get("PORT")) == str(SERVICE_PORT)
    assert env.get("HOST") == "0.0.0.0", "a pod listens on its own address"

    assert probe_path(c.get("readinessProbe")) == "/readyz"
    assert probe_path(c.get("livenessProbe")) == "/livez"
    assert probe_path(c.get("startupProbe")) in ("/livez", "/readyz")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in container_ports(deployment), probe
        assert c[probe]["timeoutSeconds"] >= 2, f"{probe}: /readyz may take 1.5 s"

    assert "/tmp" in emptydir_mounts(deployment, c), "a writable /tmp on an emptyDir"
    assert spec["enableServiceLinks"] is False, "service links would add *_PORT variables"

    for name in ("DATABASE_URL", "REDIS_URL"):
        assert isinstance(env.get(name), str), f"{service}: {name} must be set"
    assert url(env["DATABASE_URL"]).scheme == "postgresql"
    assert url(env["REDIS_URL"]).scheme in ("redis", "rediss", "redis+sentinel")


@pytest.mark.parametrize("path", RENDERS)
def test_only_identity_holds_the_signing_key(path: str) -> None:
    objects = render(path)
    for workload in workloads(objects):
        uses_private = any(name == PRIVATE_KEY_SECRET for name, _ in secret_references(workload))
        is_identity = workload["kind"] == "Deployment" and workload["metadata"]["name"] == (
            "identity"
        )
        assert uses_private == is_identity, f"{ident(workload)}: private key use"
    for service in SERVICES:
        deployment = find(objects, "Deployment", service)
        c = app(objects, service)
        env = environment(objects, c)
        mounts = mounted_secret_paths(deployment, c)
        public_dirs = {path for path, secret in mounts.items() if secret == PUBLIC_KEY_SECRET}
        assert under(env["JWT_PUBLIC_KEY_FILE"], public_dirs), f"{service}: public key mount"
        private_dirs = {path for path, secret in mounts.items() if secret == PRIVATE_KEY_SECRET}
        if service == "identity":
            assert under(env["JWT_PRIVATE_KEY_FILE"], private_dirs), "identity: private key"
            assert Path(env["JWT_PRIVATE_KEY_FILE"]).name in SECRET_KEYS[PRIVATE_KEY_SECRET]
        else:
            assert not private_dirs and "JWT_PRIVATE_KEY_FILE" not in env, service
        assert Path(env["JWT_PUBLIC_KEY_FILE"]).name in SECRET_KEYS[PUBLIC_KEY_SECRET]
        for m in c["volumeMounts"]:
            if m["mountPath"] in mounts:
                assert m.get("readOnly") is True, f"{service}: keys are mounted read-only"


@pytest.mark.parametrize("path", RENDERS)
def test_services_wait_for_their_schema(path: str) -> None:
    objects = render(path)
    for service in SERVICES:
        deployment = find(objects, "Deployment", service)
        wait = container(deployment, "wait-for-schema")
        assert wait in pod_spec(deployment)["initContainers"]
        assert wait["image"] == app(objects, service)["image"], "the image's own migrations"
        script = Path(wait["command"][-1])
        assert wait["command"][0] == "python" and script.name == WAIT_SCRIPT.name
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        mount = next(m for m in wait["volumeMounts"] if m["mountPath"] == str(script.parent))
        configmap = volumes[mount["name"]]["configMap"]["name"]
        assert configmap_data(objects, configmap)[script.name] == WAIT_SCRIPT.read_text()
        wait_env = environment(objects, wait)
        app_env = environment(objects, app(objects, service))
        assert wait_env["DATABASE_URL"] == app_env["DATABASE_URL"], "the app's own database"
        for name in ("DB_STATEMENT_CACHE_SIZE", "DB_CONNECT_TIMEOUT_SECONDS"):
            assert wait_env.get(name) == app_env.get(name), name


@pytest.mark.parametrize("path", RENDERS)
def test_deployments_drain_before_they_stop(path: str) -> None:
    objects = render(path)
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", gateway_conf(objects))
    assert read_timeout, "gateway.conf has no proxy_read_timeout"
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        main = containers(deployment, init=False)
        assert len(main) == 1, f"{name}: one container"
        pre_stop = pre_stop_seconds(main[0])
        assert pre_stop >= 3, f"{name}: preStop sleep so kube-proxy stops routing first"
        if name == "gateway":
            drain = int(read_timeout.group(1))
        else:
            env = environment(objects, main[0])
            drain = int(setting(env, "graceful_shutdown_seconds")) + math.ceil(
                float(setting(env, "shutdown_delay_seconds"))
            )
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert grace > pre_stop + drain, f"{name}: grace {grace} <= {pre_stop} + {drain}"


@pytest.mark.parametrize("path", RENDERS)
def test_replicas_spread_over_zones_and_nodes(path: str) -> None:
    for deployment in of_kind(render(path), "Deployment"):
        constraints = pod_spec(deployment).get("topologySpreadConstraints", [])
        keys = {c["topologyKey"] for c in constraints}
        assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, ident(deployment)
        for constraint in constraints:
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector == deployment["spec"]["selector"]["matchLabels"], ident(deployment)
            assert constraint["maxSkew"] >= 1


@pytest.mark.parametrize("path", RENDERS)
def test_autoscalers_scale_deployments_on_cpu(path: str) -> None:
    objects = render(path)
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2", ident(hpa)
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment"), ident(hpa)
        find(objects, "Deployment", target["name"])
        cpu = [
            m["resource"]["target"]
            for m in hpa["spec"]["metrics"]
            if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
        ]
        assert len(cpu) == 1 and cpu[0]["type"] == "Utilization", ident(hpa)
        assert 0 < cpu[0]["averageUtilization"] <= 100, ident(hpa)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], ident(hpa)
    for deployment in of_kind(objects, "Deployment"):
        assert len(hpas_for(objects, deployment)) == 1, f"{ident(deployment)}: one autoscaler"
        for c in containers(deployment):
            # Utilization is measured against the request.
            assert c["resources"]["requests"]["cpu"], f"{ident(deployment)}: cpu request"


def _evictable(pdb: dict[str, Any], replicas: int) -> int:
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        value = spec["maxUnavailable"]
        if isinstance(value, str) and value.endswith("%"):
            return math.ceil(replicas * int(value[:-1]) / 100)
        return min(int(value), replicas)
    value = spec["minAvailable"]
    if isinstance(value, str) and value.endswith("%"):
        return replicas - math.ceil(replicas * int(value[:-1]) / 100)
    return replicas - int(value)


@pytest.mark.parametrize("path", RENDERS)
def test_disruption_budgets_cover_every_deployment(path: str) -> None:
    objects = render(path)
    pods = workloads(objects)
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        spec = pdb["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), f"{ident(pdb)}: one of"
        selector = spec["selector"]["matchLabels"]
        matched = [w for w in pods if selects(selector, pod_labels(w))]
        assert len(matched) == 1, f"{ident(pdb)} selects {[ident(w) for w in matched]}"
    for deployment in of_kind(objects, "Deployment"):
        budgets = [
            pdb
            for pdb in of_kind(objects, "PodDisruptionBudget")
            if selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(deployment))
        ]
        assert len(budgets) == 1, f"{ident(deployment)}: one PodDisruptionBudget"
        minimum = hpas_for(objects, deployment)[0]["spec"]["minReplicas"]
        # A drain must be able to proceed, one pod at a time at least.
        assert _evictable(budgets[0], minimum) >= 1, f"{ident(deployment)} blocks node drains"


@pytest.mark.parametrize("path", RENDERS)
def test_services_select_pods_and_target_their_ports(path: str) -> None:
    objects = render(path)
    for svc in of_kind(objects, "Service"):
        selector = svc["spec"]["selector"]
        matched = [w for w in workloads(objects) if selects(selector, pod_labels(w))]
        assert len(matched) == 1, f"{ident(svc)} selects {[ident(w) for w in matched]}"
        targets = container_ports(matched[0])
        for port in svc["spec"]["ports"]:
            assert port.get("targetPort", port["port"]) in targets, f"{ident(svc)}: {port}"
        if matched[0]["kind"] == "StatefulSet":
            assert svc["spec"].get("clusterIP") == "None", f"{ident(svc)}: headless"
            assert matched[0]["spec"]["serviceName"] == svc["metadata"]["name"]
    for service in SERVICES:
        ports = find(objects, "Service", service)["spec"]["ports"]
        assert [p["port"] for p in ports] == [SERVICE_PORT], "the gateway's upstream port"


@pytest.mark.parametrize("path", RENDERS)
def test_migration_job(path: str) -> None:
    objects = render(path)
    job = find(objects, "Job", "v5-migrate")
    spec = pod_spec(job)
    assert spec["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["backoffLimit"] >= 1
    steps = [*spec["initContainers"], *spec["containers"]]
    commands = [c["command"] for c in steps]
    assert commands == [["v5ctl", "migrate"], ["v5ctl", "seed-catalog", "--if-empty"]]
    parser = build_parser()
    for command in commands:
        parser.parse_args(command[1:])  # exits (SystemExit) on an unknown command or option
    identity_image = app(objects, "identity")["image"]
    for c in steps:
        # The identity image carries v5ctl; the same tag as the services it migrates for.
        assert c["image"] == identity_image, c["name"]
        env = environment(objects, c)
        assert url(env["DATABASE_URL"]).scheme == "postgresql"
        assert env["DATABASE_PASSWORD"] == ("secret", "v5-database", "DATABASE_PASSWORD")


@pytest.mark.parametrize("path", RENDERS)
def test_v5_images_share_one_tag(path: str) -> None:
    images = {
        c["image"]
        for w in workloads(render(path))
        for c in containers(w)
        if is_v5_image(c["image"])
    }
    tags = {image_name(image)[1] for image in images}
    assert len(tags) == 1 and "" not in tags, f"one explicit tag for every v5 image: {images}"


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("path", RENDERS)
def test_environment_names_are_settings(path: str) -> None:
    objects = render(path)
    failures = []
    for workload in workloads(objects):
        for c in containers(workload):
            image = c["image"]
            if is_v5_image(image):
                known = SETTINGS_ENV | COMPOSITION_ENV
            else:
                repository = image_name(image)[0].rsplit("/", 1)[-1]
                assert repository in IMAGE_ENV, f"{ident(workload)}: unexpected image {image}"
                known = IMAGE_ENV[repository]
            unknown = sorted(set(environment(objects, c)) - known)
            if unknown:
                failures.append(f"{ident(workload)} container {c['name']}: {unknown}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", RENDERS)
def test_service_config_values_are_valid_settings(path: str) -> None:
    objects = render(path)
    names = {
        source["configMapRef"]["name"]
        for service in SERVICES
        for source in app(objects, service)["envFrom"]
        if "configMapRef" in source
    }
    assert len(names) == 1, f"the services should share one ConfigMap, use {names}"
    data = configmap_data(objects, names.pop())
    assert set(data) <= SETTINGS_ENV, sorted(set(data) - SETTINGS_ENV)
    # Raises on a value the services would refuse (a bad ENVIRONMENT, a negative size, ...).
    Settings.model_validate({key.lower(): value for key, value in data.items()})


@pytest.mark.parametrize("path", RENDERS)
def test_variable_references_resolve(path: str) -> None:
    """$(NAME) in env values, command and args: defined before (envFrom, or earlier env),
    else Kubernetes leaves the text as it is."""
    objects = render(path)
    failures = []
    for workload in workloads(objects):
        for c in containers(workload):
            defined = set(environment(objects, {"envFrom": c.get("envFrom", [])}))
            for item in c.get("env", []):
                for name in _VAR_REFERENCE.findall(item.get("value", "")):
                    if name not in defined:
                        failures.append(f"{ident(workload)} {c['name']} {item['name']}: {name}")
                defined.add(item["name"])
            for text in [*c.get("command", []), *c.get("args", [])]:
                for name in _VAR_REFERENCE.findall(text):
                    if name not in defined:
                        failures.append(f"{ident(workload)} {c['name']} command: {name}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("path", RENDERS)
def test_no_secret_is_rendered(path: str) -> None:
    objects = render(path)
    secrets = of_kind(objects, "Secret")
    assert all(not (s.get("data") or s.get("stringData")) for s in secrets), "secret values"
    assert not secrets, "Secrets are created by hand (deploy/k8s/README.md), not committed"


@pytest.mark.parametrize("path", RENDERS)
def test_secret_references_are_the_documented_ones(path: str) -> None:
    readme = (K8S / "README.md").read_text()
    for workload in workloads(render(path)):
        for name, key in secret_references(workload):
            assert name in SECRET_KEYS, f"{ident(workload)}: unknown Secret {name}"
            assert key is None or key in SECRET_KEYS[name], f"{ident(workload)}: {name}/{key}"
    for name, keys in SECRET_KEYS.items():
        assert f"create secret generic {name} " in readme, f"README: how to create {name}"
        for key in keys:
            assert key in readme, f"README: key {key} of {name}"


@pytest.mark.parametrize("path", RENDERS)
def test_passwords_come_from_secrets(path: str) -> None:
    objects = render(path)
    for workload in workloads(objects):
        for c in containers(workload):
            for name, value in environment(objects, c).items():
                if "PASSWORD" in name or name == "REDISCLI_AUTH":
                    assert isinstance(value, tuple) and value[0] == "secret", (
                        f"{ident(workload)} {c['name']}: {name} must come from a Secret"
                    )
                if isinstance(value, str) and "://" in value:
                    password = url(value).password
                    assert password in (None, "placeholder", ""), (
                        f"{ident(workload)} {c['name']}: {name} embeds a password literal"
                    )


# A password after `password=` or `password:`, or in a URL's user info, unless it is a
# reference ($(VAR), ${VAR}, "$(command)") or a <placeholder>.
_PASSWORD_ASSIGNMENT = re.compile(
    r"(?i)\b\w*(?:password|passwd)\w*[ \t]*[:=][ \t]*(?P<value>[^\s,;)]+)"
)
_URL_CREDENTIALS = re.compile(r"[a-z+]+://[^\s/@:]*:(?P<value>[^\s/@]+)@")
_KEY_MATERIAL = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # The base64 start of every PKCS#8 Ed25519 private key.
    re.compile(r"MC4CAQAwBQYDK2Vw"),
)


def _literal(value: str) -> bool:
    value = value.strip("\"'`")
    return bool(value) and not value.startswith(("$(", "${", "<"))


def _secret_literals(text: str) -> list[str]:
    found = [pattern.pattern for pattern in _KEY_MATERIAL if pattern.search(text)]
    for pattern in (_PASSWORD_ASSIGNMENT, _URL_CREDENTIALS):
        found += [m.group(0) for m in pattern.finditer(text) if _literal(m.group("value"))]
    return found


def test_the_secret_scan_catches_literals() -> None:
    assert _secret_literals("DATABASE_URL=postgresql://v5:hunter2@postgres:5432/v5")
    assert _secret_literals("POSTGRES_PASSWORD: hunter2")
    assert _secret_literals("--from-literal=DATABASE_PASSWORD=hunter2")
    assert _secret_literals("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI")
    assert not _secret_literals("postgresql://v5:$(DATABASE_PASSWORD)@postgres:5432/v5")
    assert not _secret_literals('--from-literal=DATABASE_PASSWORD="$(openssl rand -hex 24)"')
    assert not _secret_literals("key: DATABASE_PASSWORD\nREDIS_PASSWORD=<password>")


def test_no_key_or_password_literal_in_deploy_k8s() -> None:
    failures = []
    for file in sorted(K8S.rglob("*")):
        if file.is_file():
            text = file.read_text()
            failures += [f"{file.relative_to(ROOT)}: {hit}" for hit in _secret_literals(text)]
    for path in RENDERS:
        text = yaml.safe_dump_all(render(path))
        failures += [f"rendered {path}: {hit}" for hit in _secret_literals(text)]
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- the gateway


def _compose_image(name: str) -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image: str = compose["services"][name]["image"]
    return image


@pytest.mark.parametrize("path", RENDERS)
def test_gateway_deployment(path: str) -> None:
    objects = render(path)
    deployment = find(objects, "Deployment", "gateway")
    (nginx,) = containers(deployment)
    assert nginx["image"] == _compose_image("gateway"), "the image compose runs"
    # The image's entrypoint would try to render templates into the read-only conf.d.
    assert nginx["command"][0] == "nginx" and "daemon off;" in nginx["command"]
    assert {p["name"]: p["containerPort"] for p in nginx["ports"]} == {"http": GATEWAY_PORT}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe_path(nginx.get(probe)) == "/healthz", probe
        assert nginx[probe]["httpGet"]["port"] in container_ports(deployment), probe
    assert pod_spec(deployment)["securityContext"]["runAsUser"] != 0
    assert "env" not in nginx and "envFrom" not in nginx, "the config is rendered beforehand"

    mounts = {m["mountPath"]: m for m in nginx["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    writable = emptydir_mounts(deployment, nginx)
    assert {"/tmp", "/var/cache/nginx"} <= writable, "nginx writes its temp files there"

    def configmap_file(mount_path: str) -> str:
        """The ConfigMap key that ends up at mount_path in the container."""
        for directory, mount in mounts.items():
            volume = volumes[mount["name"]]
            if "configMap" not in volume:
                continue
            items = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
            if mount.get("subPath"):
                if directory == mount_path:
                    return items.get(mount["subPath"], mount["subPath"])
            elif mount_path.startswith(directory.rstrip("/") + "/"):
                relative = mount_path[len(directory.rstrip("/")) + 1 :]
                if relative in items:
                    return items[relative]
        raise AssertionError(f"nothing from the gateway ConfigMap is mounted at {mount_path}")

    main_conf = (NGINX / "nginx.conf").read_text()
    include = re.search(r"include (\S+);", main_conf)
    assert include, "nginx.conf includes the gateway config"
    included_dir = str(Path(include.group(1)).parent)
    assert configmap_file("/etc/nginx/nginx.conf") == "nginx.conf"
    assert configmap_file(f"{included_dir}/gateway.conf") == "gateway.conf"
    assert configmap_file(OPENAPI_PATH) == "openapi.json"
    # Only gateway.conf is included: the image's default server (port 80) stays out.
    conf_d = volumes[mounts[included_dir]["name"]]["configMap"]
    assert [item["key"] for item in conf_d["items"]] == ["gateway.conf"]
    # Every path nginx writes, in the main config, is on an emptyDir.
    for directive in ("pid", "client_body_temp_path", "proxy_temp_path"):
        match = re.search(rf"^\s*{directive} (\S+);", main_conf, flags=re.M)
        assert match and under(match.group(1), writable), f"nginx.conf {directive}"

    names = {v["configMap"]["name"] for v in volumes.values() if "configMap" in v}
    data = configmap_data(objects, names.pop())
    expected = k8s_gateway_files()
    assert set(data) == set(expected)
    for name, text in expected.items():
        assert data[name] == text, f"gateway ConfigMap {name} differs from nginx/"


@pytest.mark.parametrize("path", RENDERS)
def test_gateway_config_names_the_services(path: str) -> None:
    objects = render(path)
    text = gateway_conf(objects)
    assert f"listen {GATEWAY_PORT} " in text
    assert f"alias {OPENAPI_PATH};" in text
    assert "${" not in text, "a template variable was left unfilled"
    for service in SERVICES:
        block = re.search(rf"upstream v5_{service} \{{(.*?)\}}", text, flags=re.S)
        assert block, f"no upstream for {service}"
        servers = re.findall(r"server (\S+?):(\d+)\b", block.group(1))
        assert servers and {host for host, _ in servers} == {service}, servers
        ports = [p["port"] for p in find(objects, "Service", service)["spec"]["ports"]]
        assert {int(port) for _, port in servers} <= set(ports)
        retries = re.search(r"proxy_next_upstream_tries (\d+);", text)
        assert retries and len(servers) == int(retries.group(1)), "one entry per try"


def test_committed_gateway_files_match_nginx_dir() -> None:
    for name, text in k8s_gateway_files().items():
        committed = K8S_GATEWAY_DIR / name
        assert committed.read_text() == text, (
            f"{committed.relative_to(ROOT)} is out of date: run `v5-cluster k8s-gateway`"
        )
    assert write_or_check_k8s_gateway(check=True) == 0


def test_gateway_check_detects_drift(tmp_path: Path) -> None:
    assert write_or_check_k8s_gateway(check=True, directory=tmp_path) == 1
    assert write_or_check_k8s_gateway(check=False, directory=tmp_path) == 0
    assert write_or_check_k8s_gateway(check=True, directory=tmp_path) == 0
    (tmp_path / "gateway.conf").write_text(render_k8s_gateway("listen ${GATEWAY_PORT};"))
    assert write_or_check_k8s_gateway(check=True, directory=tmp_path) == 1


def test_nginx_accepts_the_k8s_gateway_config(tmp_path: Path) -> None:
    """`nginx -t` on the rendered config, with the main nginx.conf's paths moved into a
    temporary folder and the Service names (which only cluster DNS resolves, and nginx
    resolves while testing) mapped to the loopback address."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        pytest.fail("nginx is required (deploy/local/bootstrap.sh installs it)")
    gateway, mapped = re.subn(
        rf"server ({'|'.join(SERVICES)}):{SERVICE_PORT}\b",
        f"server 127.0.0.1:{SERVICE_PORT}",
        (K8S_GATEWAY_DIR / "gateway.conf").read_text(),
    )
    assert mapped == 4 * 3, f"expected 3 server entries per upstream, mapped {mapped}"
    (tmp_path / "gateway.conf").write_text(gateway)
    main = (K8S_GATEWAY_DIR / "nginx.conf").read_text()
    main = main.replace("/tmp/", f"{tmp_path}/")  # first: tmp_path may be in /tmp itself
    main = main.replace("/etc/nginx/conf.d/*.conf", str(tmp_path / "gateway.conf"))
    # The temp paths the image keeps under /var/cache/nginx (an emptyDir in the pod).
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp_path / kind};\n" for kind in ("fastcgi", "uwsgi", "scgi")
    )
    main = main.replace("    include ", temp_paths + "    include ", 1)
    (tmp_path / "nginx.conf").write_text(main)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- overlays


def test_dev_runs_redis_and_postgresql_in_the_cluster() -> None:
    objects = render(DEV)
    stateful = {s["metadata"]["name"]: s for s in of_kind(objects, "StatefulSet")}
    assert set(stateful) == {"postgres", "redis"}
    for name, statefulset in stateful.items():
        (c,) = containers(statefulset)
        assert c["image"] == _compose_image(name), f"{name}: the image compose runs"
        claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
        assert claims and claims <= {m["name"] for m in c["volumeMounts"]}, f"{name}: PVC"
        for template in statefulset["spec"]["volumeClaimTemplates"]:
            assert template["spec"]["resources"]["requests"]["storage"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c.get(probe, {}).get("exec"), f"{name}: {probe}"
        headless = find(objects, "Service", statefulset["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None", f"{name}: headless Service"

    redis = containers(stateful["redis"])[0]
    arguments = redis["args"]
    assert arguments[arguments.index("--appendonly") + 1] == "yes"
    assert arguments[arguments.index("--appendfsync") + 1] == "everysec"
    data_dir = arguments[arguments.index("--dir") + 1]
    assert data_dir in {m["mountPath"] for m in redis["volumeMounts"]}, "AOF on the volume"
    postgres = containers(stateful["postgres"])[0]
    pg_env = environment(objects, postgres)
    pg_data = {m["mountPath"] for m in postgres["volumeMounts"] if m["name"] == "data"}
    assert under(pg_env["PGDATA"], pg_data), "PGDATA on the volume"

    # The services reach the in-cluster stores, with the passwords those start with.
    ports = {name: find(objects, "Service", name)["spec"]["ports"][0]["port"] for name in stateful}
    for service in SERVICES:
        env = environment(objects, app(objects, service))
        database, redis_url = url(env["DATABASE_URL"]), url(env["REDIS_URL"])
        assert (database.hostname, database.port) == ("postgres", ports["postgres"])
        assert (redis_url.hostname, redis_url.port) == ("redis", ports["redis"])
        assert database.username == pg_env["POSTGRES_USER"]
        assert database.path == f"/{pg_env['POSTGRES_DB']}"
    assert pg_env["POSTGRES_PASSWORD"] == ("secret", "v5-database", "DATABASE_PASSWORD")
    assert environment(objects, redis)["REDIS_PASSWORD"] == ("secret", "v5-redis", "REDIS_PASSWORD")

    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= 2, ident(hpa)


def test_prod_uses_external_highly_available_data_stores() -> None:
    objects = render(PROD)
    assert not of_kind(objects, "StatefulSet"), "no data store in the cluster"
    assert not of_kind(objects, "PersistentVolumeClaim")
    service_names = {s["metadata"]["name"] for s in of_kind(objects, "Service")}
    assert service_names == {*SERVICES, "gateway"}

    job = find(objects, "Job", "v5-migrate")
    job_hosts = {url(environment(objects, c)["DATABASE_URL"]).netloc for c in containers(job)}
    assert len(job_hosts) == 1
    for service in SERVICES:
        env = environment(objects, app(objects, service))
        assert env["ENVIRONMENT"] == "production"
        assert str(env["DB_STATEMENT_CACHE_SIZE"]) == "0", "PgBouncer in transaction mode"
        match = _SENTINEL_URL.fullmatch(env["REDIS_URL"])
        assert match, f"{service}: REDIS_URL is not a Sentinel URL: {env['REDIS_URL']}"
        hosts = match.group("hosts").split(",")
        assert len(hosts) >= 3 and all(h.rsplit(":", 1)[1] == "26379" for h in hosts), hosts
        # The migrations go to PostgreSQL itself, the services through the pooler.
        assert url(env["DATABASE_URL"]).netloc not in job_hosts, f"{service}: pooler"
        assert url(env["DATABASE_URL"]).password == "placeholder"
    for c in containers(job):
        env = environment(objects, c)
        assert str(env.get("ENVIRONMENT")) == "production"


def test_prod_runs_more_replicas_and_keeps_capacity_through_drains() -> None:
    objects = render(PROD)
    dev = render(DEV)
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        hpa = hpas_for(objects, deployment)[0]["spec"]
        dev_hpa = hpas_for(dev, find(dev, "Deployment", name))[0]["spec"]
        assert hpa["minReplicas"] >= 3 and hpa["minReplicas"] > dev_hpa["maxReplicas"], name
        assert hpa["maxReplicas"] > hpa["minReplicas"], name
        (pdb,) = [
            p
            for p in of_kind(objects, "PodDisruptionBudget")
            if selects(p["spec"]["selector"]["matchLabels"], pod_labels(deployment))
        ]
        assert "minAvailable" in pdb["spec"] and "maxUnavailable" not in pdb["spec"], name
        evictable = _evictable(pdb, hpa["minReplicas"])
        # A drain proceeds, and at least half of the minimum keeps serving.
        assert 1 <= evictable <= hpa["minReplicas"] // 2, f"{name}: {evictable} evictable"
        for c in containers(deployment):
            if is_v5_image(c["image"]):
                assert image_name(c["image"])[1] != "dev", f"{name}: a release tag"
    gateway = find(objects, "Service", "gateway")["spec"]
    assert gateway["type"] == "LoadBalancer"
    assert gateway["externalTrafficPolicy"] == "Local", "the gateway limits per client address"


def test_readme_explains_render_secrets_apply_and_scale() -> None:
    readme = (K8S / "README.md").read_text()
    for command in (
        "kubectl kustomize deploy/k8s/overlays/dev",
        "kubectl apply -k deploy/k8s/overlays/dev",
        "kubectl -n v5 create secret generic",
        "v5-cluster k8s-gateway",
        "kubectl -n v5 patch hpa",
    ):
        assert command in readme, command


# --------------------------------------------------------------------------- wait_for_schema


def _wait_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wait_for_schema", WAIT_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wait_for_schema_lists_missing_migrations() -> None:
    module = _wait_module()
    assert module.missing(["0001", "0002", "0003"], {"0001"}) == ["0002", "0003"]
    assert module.missing(["0001"], {"0001", "0000_old"}) == []


def test_wait_for_schema_waits_until_every_bundled_migration_is_applied(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _wait_module()
    versions = [m.version for m in bundled_migrations()]
    answers: list[Any] = [
        OSError("connect to postgresql://v5:hunter2@postgres failed"),
        asyncpg.UndefinedTableError("relation schema_migrations does not exist"),
        set(versions[:1]),
        set(versions[:1]),
        set(versions),
    ]

    async def applied_versions(_settings: Settings) -> set[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        result: set[str] = answer
        return result

    monkeypatch.setattr(module, "applied_versions", applied_versions)
    asyncio.run(module.wait(Settings(), poll_seconds=0))
    assert not answers, "returned before every migration was applied"
    lines = [yaml.safe_load(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == [
        "postgresql_unavailable",
        "waiting_for_migrations",
        "waiting_for_migrations",  # fewer missing: logged again; unchanged: not
        "schema_ready",
    ]
    assert lines[1]["missing"] == versions and lines[2]["missing"] == versions[1:]
    assert "hunter2" not in str(lines)
