"""Structure of docker-compose.yml and the service Dockerfiles.

There is no Docker engine where these tests run, so they check the files themselves: the
topology, the dependencies and healthchecks that make `docker compose up` come up in order,
scaling without container names, and that every path the files refer to exists.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
GATEWAY_TEMPLATE = ROOT / "nginx" / "templates" / "gateway.conf.template"

APP_SERVICES = ("identity", "conversation", "recommendation", "learning")
INFRA_SERVICES = ("postgres", "redis", "keygen", "migrate", "gateway")

# ${VAR}, ${VAR:-default}, ${VAR-default}; `$$` is a literal dollar sign.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)
# Variables that the nginx image's envsubst step would substitute in a template.
_TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}|\$([A-Z][A-Z0-9_]*)\b")


def resolve(value: Any) -> Any:
    """Interpolate like compose does with an empty environment: defaults, else ''."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            return match.group("default") or ""

        return _INTERPOLATION.sub(replace, value)
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item) for item in value]
    return value


@cache
def _raw_compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        data = yaml.safe_load(handle)  # safe_load resolves anchors and `<<` merge keys
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return resolve(_raw_compose())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as {name: condition}, for the list and the mapping forms."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


def _volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Mounts as (source, target, read_only), for the short and the long syntax."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
            options = parts[2].split(",") if len(parts) > 2 else []
            mounts.append((source, target, "ro" in options))
        else:
            mounts.append(
                (volume.get("source", ""), volume["target"], bool(volume.get("read_only")))
            )
    return mounts


def _dockerfile(name: str) -> str:
    return (ROOT / "services" / name / "Dockerfile").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, args = stripped.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


# --------------------------------------------------------------------------- compose file


def test_compose_specification_without_version_key() -> None:
    assert "version" not in _raw_compose(), "the Compose Specification has no top-level version"


def test_all_services_exist(services: dict[str, dict[str, Any]]) -> None:
    for name in (*APP_SERVICES, *INFRA_SERVICES):
        assert name in services, f"service {name!r} missing from docker-compose.yml"


def test_scaled_services_have_no_container_name(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "replicas" in (service.get("deploy") or {}) or name in APP_SERVICES:
            assert "container_name" not in service, f"{name}: container_name prevents scaling"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_is_replicated(services: dict[str, dict[str, Any]], name: str) -> None:
    replicas = (services[name].get("deploy") or {}).get("replicas")
    assert replicas is not None, f"{name}: deploy.replicas missing"
    assert int(replicas) >= 2, f"{name}: deploy.replicas defaults to {replicas}, want >= 2"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_jobs_and_datastores(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    deps = _depends_on(services[name])
    assert deps.get("migrate") == "service_completed_successfully", name
    assert deps.get("keygen") == "service_completed_successfully", name
    assert deps.get("postgres") == "service_healthy", name
    assert deps.get("redis") == "service_healthy", name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runtime_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    test = (service.get("healthcheck") or {}).get("test")
    assert test, f"{name}: healthcheck missing"
    assert "/readyz" in (test if isinstance(test, str) else " ".join(test)), name
    assert service.get("restart") == "unless-stopped", name
    assert service.get("stop_grace_period"), f"{name}: stop_grace_period missing"
    assert "ports" not in service, f"{name}: only the gateway publishes ports"
    build = service.get("build") or {}
    assert build.get("context") == ".", name
    assert build.get("dockerfile") == f"services/{name}/Dockerfile", name

    env = _environment(service)
    for key in ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "JWT_PUBLIC_KEY_FILE"):
        assert env.get(key), f"{name}: {key} not set"
    assert env["DATABASE_URL"].startswith("postgresql://"), name
    assert "@postgres:5432/" in env["DATABASE_URL"], name
    assert env["REDIS_URL"].startswith("redis://redis:6379/"), name
    # Only identity signs tokens, so only identity is told where the private key is.
    assert ("JWT_PRIVATE_KEY_FILE" in env) == (name == "identity"), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_mounts_keys_read_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _environment(services[name])
    key_mounts = [m for m in _volumes(services[name]) if m[0] == "jwt-keys"]
    assert key_mounts, f"{name}: jwt-keys volume not mounted"
    assert all(read_only for _, _, read_only in key_mounts), f"{name}: keys must be read-only"
    targets = [target for _, target, _ in key_mounts]
    key_vars = ["JWT_PUBLIC_KEY_FILE"] + (["JWT_PRIVATE_KEY_FILE"] if name == "identity" else [])
    for var in key_vars:
        assert any(env[var].startswith(target.rstrip("/") + "/") for target in targets), (
            f"{name}: {var}={env[var]} is not inside the mounted keys volume"
        )
    assert "jwt-keys" in (compose.get("volumes") or {})


def test_postgres(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:15")
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    assert _environment(postgres).get("POSTGRES_PASSWORD"), "development default missing"
    raw_password = _raw_compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert raw_password.startswith("${POSTGRES_PASSWORD"), "password must come from the env"
    named = [s for s, t, _ in _volumes(postgres) if t == "/var/lib/postgresql/data"]
    assert named and named[0] in (compose.get("volumes") or {}), "postgres needs a named volume"


def test_redis_persists_with_aof(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = _command(redis).split()
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes"
    assert "--appendfsync" in command
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert "ping" in str(redis["healthcheck"]["test"])
    named = [s for s, t, _ in _volumes(redis) if t == "/data"]
    assert named and named[0] in (compose.get("volumes") or {}), "redis needs a named volume"


def test_migrate_job(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    command = _command(migrate)
    assert "v5ctl migrate" in command
    assert "v5ctl seed-catalog --if-empty" in command
    assert _depends_on(migrate).get("postgres") == "service_healthy"
    assert _environment(migrate).get("DATABASE_URL")
    assert (migrate.get("build") or {}).get("dockerfile") == "services/identity/Dockerfile"
    assert migrate.get("restart", "no") == "no", "a one-shot job must not restart"
    assert "deploy" not in migrate


def test_keygen_job(services: dict[str, dict[str, Any]]) -> None:
    keygen = services["keygen"]
    assert "v5ctl generate-keys --dir /keys" in _command(keygen)
    mounts = _volumes(keygen)
    assert ("jwt-keys", "/keys", False) in mounts, "keygen writes into the jwt-keys volume"
    assert (keygen.get("build") or {}).get("dockerfile") == "services/identity/Dockerfile"
    assert keygen.get("restart", "no") == "no", "a one-shot job must not restart"


def test_gateway(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["gateway"]
    image = str(gateway["image"])
    match = re.fullmatch(r"nginx:1\.(\d+)(?:\.\d+)?-alpine", image)
    assert match and int(match.group(1)) >= 27, f"want a pinned nginx 1.27+ alpine, got {image}"
    ports = [str(port) for port in gateway.get("ports") or []]
    assert "8080:8080" in ports, f"gateway must publish 8080, has {ports}"
    deps = _depends_on(gateway)
    for name in APP_SERVICES:
        assert deps.get(name) == "service_healthy", f"gateway must wait for healthy {name}"
    assert "/healthz" in str(gateway["healthcheck"]["test"])

    mounts = {target: (source, read_only) for source, target, read_only in _volumes(gateway)}
    assert mounts["/etc/nginx/nginx.conf"][0] == "./nginx/nginx.conf"
    assert mounts["/etc/nginx/templates"][0] == "./nginx/templates"
    assert mounts["/usr/share/v5/openapi.json"] == ("./nginx/openapi.json", True)

    env = _environment(gateway)
    for name in APP_SERVICES:
        servers = env.get(f"{name.upper()}_SERVERS", "")
        assert re.search(rf"\bserver {name}:8000\b[^;]*;", servers), (name, servers)
    assert env.get("GATEWAY_PORT") == "8080"
    assert env.get("OPENAPI_FILE") == "/usr/share/v5/openapi.json"
    assert env.get("ACCESS_LOG")
    for key in ("AUTH_RPS", "AUTH_BURST", "API_RPS", "API_BURST"):
        assert env.get(f"RATE_LIMIT_{key}", "").isdigit(), key


def test_gateway_environment_covers_template_variables(
    services: dict[str, dict[str, Any]],
) -> None:
    if not GATEWAY_TEMPLATE.exists():
        pytest.skip("nginx/templates/gateway.conf.template not written yet")
    text = "\n".join(
        line
        for line in GATEWAY_TEMPLATE.read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    wanted = {braced or bare for braced, bare in _TEMPLATE_VARIABLE.findall(text)}
    env = _environment(services["gateway"])
    missing = sorted(name for name in wanted if not env.get(name))
    assert not missing, f"gateway environment lacks template variables: {missing}"


def test_bind_mounted_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = []
    for name, service in services.items():
        for source, _, _ in _volumes(service):
            if source.startswith(("./", "../")) and not (ROOT / source).exists():
                missing.append(f"{name}: {source}")
    assert not missing, f"bind-mounted paths missing from the repository: {missing}"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _, _ in _volumes(service):
            if source and not source.startswith(("./", "../", "/", "~")):
                assert source in declared, f"{name}: volume {source!r} not declared"


def test_every_service_has_an_image_or_build(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        build = service.get("build")
        if build:
            assert (ROOT / build.get("context", ".")).is_dir(), name
            dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"


# --------------------------------------------------------------------------- Dockerfiles


def _workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for path in sorted(ROOT.glob(pattern)):
            if (path / "pyproject.toml").is_file():
                members.append(path.relative_to(ROOT).as_posix())
    return members


def test_dockerfile_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    paths = {
        service["build"]["dockerfile"] for service in services.values() if service.get("build")
    }
    assert {f"services/{name}/Dockerfile" for name in APP_SERVICES} <= paths
    for path in paths:
        assert (ROOT / path).is_file(), f"{path} missing"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_dockerfile(name: str) -> None:
    text = _dockerfile(name)
    instructions = _instructions(text)
    keywords = [keyword for keyword, _ in instructions]
    code = "\n".join(f"{keyword} {args}" for keyword, args in instructions)  # no comments

    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    assert all(args.split()[0].startswith("python:3.11-slim") for args in froms), froms
    assert "@sha256" not in code
    assert re.search(r"COPY --from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ /uv ", code)

    syncs = re.findall(r"uv sync [^&\n]*", code)
    assert syncs, "no uv sync"
    for sync in syncs:
        assert sync.startswith("uv sync --frozen"), sync
        assert "--locked" not in sync, "--locked fails when workspace members are absent"
        assert "--no-dev" in sync, sync
        assert re.search(r'--package "?v5-(\$\{SERVICE\}|' + name + r')"?', sync), sync
    service_args = [args for keyword, args in instructions if keyword == "ARG"]
    if any(args.startswith("SERVICE=") for args in service_args):
        assert f"SERVICE={name}" in service_args, "ARG SERVICE names another service"

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    assert "HEALTHCHECK" in keywords
    healthcheck = next(args for keyword, args in instructions if keyword == "HEALTHCHECK")
    assert "urllib" in healthcheck and "http://127.0.0.1:8000/readyz" in healthcheck
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    assert "EXPOSE" in keywords and ("EXPOSE", "8000") in instructions
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    for setting in ("PATH=/app/.venv/bin:$PATH", "PYTHONUNBUFFERED=1", "HOST=0.0.0.0", "PORT=8000"):
        assert setting in env, setting

    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    assert cmds, "no CMD"
    match = re.fullmatch(r'\["python",\s*"-m",\s*"([a-z_]+)"\]', cmds[-1])
    assert match, f"CMD must be the exec form of python -m <module>, got {cmds[-1]}"
    module = match.group(1)
    assert module == f"{name}_service"
    assert (ROOT / "services" / name / "src" / module).is_dir(), f"no package {module}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_dockerfile_copies_every_workspace_manifest(name: str) -> None:
    """uv reads the whole workspace, so every member's pyproject.toml must be in the image."""
    text = _dockerfile(name)
    copies = [args for keyword, args in _instructions(text) if keyword == "COPY"]
    assert any("uv.lock" in args and "pyproject.toml" in args for args in copies)
    for member in _workspace_members():
        assert any(f"{member}/pyproject.toml" in args for args in copies), (
            f"services/{name}/Dockerfile does not copy {member}/pyproject.toml"
        )


def test_dockerfiles_differ_only_in_the_service_name() -> None:
    def normalised(name: str) -> str:
        # Only the SERVICE default and the module in CMD may name the service.
        text = _dockerfile(name)
        text = re.sub(rf"^ARG SERVICE={name}$", "ARG SERVICE=<name>", text, flags=re.M)
        return re.sub(rf'^CMD (.*)"{name}_service"', r'CMD \1"<name>_service"', text, flags=re.M)

    shapes = {name: normalised(name) for name in APP_SERVICES}
    reference = shapes["identity"]
    for name, shape in shapes.items():
        assert shape == reference, f"services/{name}/Dockerfile differs from identity's in shape"


def test_dockerignore_keeps_the_context_small() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".venv", ".state", "tests", "reports", "loadtests"):
        assert entry in entries, f".dockerignore should exclude {entry}"
    assert any("__pycache__" in entry for entry in entries)
    # What the image build needs must not be excluded.
    for needed in ("uv.lock", "pyproject.toml", "shared", "services", "deploy", "deploy/local"):
        assert needed not in entries, f".dockerignore must not exclude {needed}"


# --------------------------------------------------------------------------- profiles

PROFILES = {
    "observability": ("prometheus", "grafana"),
    "loadtest": ("loadtest-accounts", "locust-master", "locust-worker"),
}
PROFILE_SERVICES = tuple(name for names in PROFILES.values() for name in names)
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
_PINNED_TAG = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")


def _args(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _option(args: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command line."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _repo_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file that a bind mount of the service shows at container_path."""
    for source, target, _ in _volumes(service):
        if source.startswith("./") and (
            container_path == target or container_path.startswith(target.rstrip("/") + "/")
        ):
            return ROOT / source / container_path[len(target) :].lstrip("/")
    return None


def _published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Published ports as (host address, host port, container port)."""
    ports = []
    for entry in service.get("ports") or []:
        parts = str(entry).split(":")
        if len(parts) == 3:
            ports.append((parts[0], parts[1], parts[2]))
        else:
            ports.append(("", parts[0], parts[-1]))
    return ports


def test_profile_services_exist_in_their_profile(services: dict[str, dict[str, Any]]) -> None:
    for profile, names in PROFILES.items():
        for name in names:
            assert name in services, f"service {name!r} missing"
            assert services[name].get("profiles") == [profile], (
                f"{name} belongs to the {profile} profile only"
            )


def test_plain_up_starts_only_the_platform(services: dict[str, dict[str, Any]]) -> None:
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {*APP_SERVICES, *INFRA_SERVICES}
    for name in default:
        needed = set(_depends_on(services[name]))
        assert not needed & set(PROFILE_SERVICES), (
            f"{name} depends on a profile service, which a plain `up` would then start"
        )


def test_profile_services_depend_only_within_reach(services: dict[str, dict[str, Any]]) -> None:
    for profile, names in PROFILES.items():
        for name in names:
            for needed in _depends_on(services[name]):
                assert needed in services, f"{name} depends on unknown {needed}"
                needed_profiles = services[needed].get("profiles") or []
                assert not needed_profiles or profile in needed_profiles, (
                    f"{name} ({profile}) depends on {needed} of profile {needed_profiles}"
                )


@pytest.mark.parametrize("name", PROFILE_SERVICES)
def test_profile_images_are_pinned(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    if service.get("build"):
        assert service["build"].get("dockerfile") == "services/identity/Dockerfile", name
        return
    image = str(service["image"])
    assert _PINNED_TAG.match(image), f"{name}: pin a full version, not {image!r}"


@pytest.mark.parametrize("name", PROFILE_SERVICES)
def test_profile_ports_are_published_on_loopback(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    for address, _, _ in _published(services[name]):
        assert address == "127.0.0.1", f"{name}: publish on 127.0.0.1 only (local use)"


def test_prometheus_service(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    assert str(prometheus["image"]).startswith("prom/prometheus:v2.")
    args = _args(prometheus)
    config = _option(args, "--config.file")
    assert config, "--config.file missing"
    repo_config = _repo_path(prometheus, config)
    assert repo_config == ROOT / "deploy/observability/prometheus/prometheus.yml"
    assert repo_config.is_file()
    storage = _option(args, "--storage.tsdb.path")
    named = [s for s, t, _ in _volumes(prometheus) if t == storage]
    assert named and named[0] in (compose.get("volumes") or {}), "TSDB needs a named volume"
    assert ("127.0.0.1", "9090", "9090") in _published(prometheus)
    assert "/-/ready" in str(prometheus["healthcheck"]["test"])
    assert prometheus.get("restart") == "unless-stopped"


def test_grafana_service(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    assert str(grafana["image"]).startswith("grafana/grafana:")
    assert _depends_on(grafana).get("prometheus") == "service_healthy"
    assert ("127.0.0.1", "3000", "3000") in _published(grafana)
    assert "/api/health" in str(grafana["healthcheck"]["test"])
    named = [s for s, t, _ in _volumes(grafana) if t == "/var/lib/grafana"]
    assert named and named[0] in (compose.get("volumes") or {}), "Grafana needs a named volume"
    mounts = {target: (source, ro) for source, target, ro in _volumes(grafana)}
    assert mounts["/etc/grafana/provisioning"] == (
        "./deploy/observability/grafana/provisioning",
        True,
    )
    assert mounts["/etc/grafana/dashboards"] == ("./deploy/observability/grafana/dashboards", True)

    env = _environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer", "anonymous users may only view"
    assert env.get("GF_USERS_ALLOW_SIGN_UP") == "false"


def test_grafana_admin_password_comes_from_the_environment_only() -> None:
    raw = _raw_compose()["services"]["grafana"]
    password = raw["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    match = _INTERPOLATION.fullmatch(password)
    assert match and match.group("name") == "GRAFANA_ADMIN_PASSWORD", password
    assert not match.group("default"), "no default password may be committed"
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in raw["environment"]
    # With the variable unset it is empty, and the container must refuse to start rather
    # than let Grafana fall back to its well-known default.
    entrypoint = " ".join(str(part) for part in raw.get("entrypoint") or [])
    assert re.search(r'-z "\$\$\{?GF_SECURITY_ADMIN_PASSWORD\}?"', entrypoint), entrypoint
    assert "exit 1" in entrypoint and "exec /run.sh" in entrypoint


def test_no_secret_is_committed_in_profile_services() -> None:
    raw = _raw_compose()["services"]
    for name in PROFILE_SERVICES:
        for key, value in (raw[name].get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN(?!_TTL)", key):
                text = str(value)
                match = _INTERPOLATION.fullmatch(text)
                assert match and not match.group("default"), f"{name}: {key} has a value"


def test_loadtest_accounts_job(services: dict[str, dict[str, Any]]) -> None:
    job = services["loadtest-accounts"]
    args = _args(job)
    assert args[:2] == ["v5ctl", "provision-listeners"]
    assert int(_option(args, "--count") or 0) >= 1
    out = _option(args, "--out")
    assert out
    assert job.get("restart", "no") == "no", "a one-shot job must not restart"
    assert "deploy" not in job
    deps = _depends_on(job)
    assert deps.get("migrate") == "service_completed_successfully"
    assert deps.get("keygen") == "service_completed_successfully"
    assert deps.get("postgres") == "service_healthy"

    env = _environment(job)
    assert "@postgres:5432/" in env["DATABASE_URL"]
    mounts = {target: (source, ro) for source, target, ro in _volumes(job)}
    for var in ("JWT_PRIVATE_KEY_FILE", "JWT_PUBLIC_KEY_FILE"):
        folder = env[var].rsplit("/", 1)[0]
        assert mounts.get(folder) == ("jwt-keys", True), f"{var} is not in the read-only keys"
    folder = out.rsplit("/", 1)[0]
    assert mounts.get(folder) == ("loadtest-accounts", False), "accounts go to their volume"
    # The job runs as the identity image's user, which may write only the folder that the
    # image makes for it: a new named volume mounted there takes its ownership.
    dockerfile = (ROOT / job["build"]["dockerfile"]).read_text()
    assert re.search(rf"install -d -o 10001 -g 10001 [^\n]*{re.escape(folder)}\b", dockerfile)


def test_locust_master(services: dict[str, dict[str, Any]]) -> None:
    master = services["locust-master"]
    args = _args(master)
    assert "--master" in args and "--worker" not in args
    assert "deploy" not in master, "one master"
    locustfile = _option(args, "-f")
    assert locustfile and _repo_path(master, locustfile) == LOCUSTFILE
    gateway_port = _environment(services["gateway"])["GATEWAY_PORT"]
    assert _option(args, "--host") == f"http://gateway:{gateway_port}"
    assert _depends_on(master).get("gateway") == "service_healthy"
    web_port = _option(args, "--web-port") or "8089"
    assert ("127.0.0.1", "8089", web_port) in _published(master)
    assert "--headless" not in args
    # The locustfile imports the loadtests package by name.
    env = _environment(master)
    assert (Path(env["PYTHONPATH"]) / "loadtests" / "locustfile.py").as_posix() == locustfile


def test_locust_workers(services: dict[str, dict[str, Any]]) -> None:
    raw = _raw_compose()["services"]["locust-worker"]
    worker = services["locust-worker"]
    args = _args(worker)
    assert "--worker" in args and "--master" not in args
    assert "container_name" not in worker
    replicas = (worker.get("deploy") or {}).get("replicas")
    assert replicas and int(replicas) >= 1
    master_host = _option(args, "--master-host")
    assert master_host in services and "--master" in _args(services[master_host])
    locustfile = _option(args, "-f")
    assert locustfile == _option(_args(services[master_host]), "-f"), "same locustfile"
    assert locustfile and _repo_path(worker, locustfile) == LOCUSTFILE
    assert _depends_on(worker).get(master_host) == "service_started"
    assert _depends_on(worker).get("loadtest-accounts") == "service_completed_successfully"
    assert "ports" not in worker

    env = _environment(worker)
    # Accounts are split between the workers by index: the process count is the replica
    # count, from the same variable.
    assert raw["environment"]["V5_GENERATOR_PROCESSES"] == raw["deploy"]["replicas"]
    accounts = env["V5_ACCOUNTS_FILE"]
    mounts = {target: (source, ro) for source, target, ro in _volumes(worker)}
    folder, _, name = accounts.rpartition("/")
    assert mounts.get(folder) == ("loadtest-accounts", True)
    job_out = _option(_args(services["loadtest-accounts"]), "--out") or ""
    assert job_out.rpartition("/")[2] == name, "workers read the file the job writes"
    # provision-listeners writes the file for its owner only: the workers run as that uid.
    assert str(worker.get("user", "")).split(":")[0] == "10001"
    assert "V5_ACCOUNTS_FILE" in LOCUSTFILE.read_text()
    assert "V5_GENERATOR_PROCESSES" in LOCUSTFILE.read_text()
