"""The observability profile's own files: the Prometheus configuration (checked by the real
promtool), the Grafana provisioning, and the dashboard, whose every query may only name
metrics and labels that v5_shared.metrics defines; and the bounded metrics themselves.

The helpers at the top are also used by tests/e2e/test_observability.py, which runs the
same configuration and the same dashboard queries against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from v5_shared import metrics
from v5_shared.domain.bandit import ARMS
from v5_shared.domain.rewards import EVENTS
from v5_shared.domain.weights import FEEDBACK_TYPES

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus" / "prometheus.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards"
COMPOSE_FILE = ROOT / "docker-compose.yml"

APP_SERVICES = ("identity", "conversation", "recommendation", "learning")
# Labels that Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# The only Grafana variables the dashboard uses, and what stands in for them when a query
# is sent to Prometheus directly (Grafana makes $__rate_interval at least four scrapes).
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}

# Sample names each metric type exposes (prometheus_client drops `_total` from a
# counter's stored name and adds it back on exposition).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


# --------------------------------------------------------------------------- helpers


def defined_metrics() -> dict[str, frozenset[str]]:
    """Every sample name that v5_shared.metrics exposes, with its label names (`le` for a
    histogram's buckets)."""
    names: dict[str, frozenset[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = frozenset(value._labelnames)
        for suffix in _SUFFIXES[str(value._type)]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[value._name + suffix] = labels | extra
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan", "Inf", "NaN"}
)


def _without_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations or keywords, outside label matchers, groupings and ranges."""
    text = _without_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name not in _KEYWORDS:
            names.add(name)
    return names


def promql_selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched on it) for every `name{...}` selector."""
    text = _without_strings(expr)
    return [(name, set(_MATCHER_LABEL.findall(body))) for name, body in _SELECTOR.findall(text)]


def promql_grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_left/group_right lists."""
    labels: set[str] = set()
    for body in _GROUPING.findall(_without_strings(expr)):
        labels.update(part.strip() for part in body.split(",") if part.strip())
    return labels


def evaluable(expr: str) -> str:
    """A panel's query with Grafana's variables replaced, as Prometheus would be sent it."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


@cache
def load_dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL expression) for every query of every panel."""
    return [
        (path.name, panel["title"], target["expr"])
        for path in dashboard_files()
        for panel in all_panels(load_dashboard(path))
        for target in panel.get("targets", [])
    ]


def load_prometheus_config() -> dict[str, Any]:
    data = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert isinstance(data, dict)
    return data


def static_prometheus_config(targets: dict[str, list[str]]) -> dict[str, Any]:
    """The compose configuration with each job's DNS discovery replaced by fixed targets
    (`targets[job]`, host:port), everything else left as it is: what a machine without
    Docker's DNS runs."""
    config = load_prometheus_config()
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
    return config


def promtool_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (Debian package prometheus; make bootstrap)")
    return subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _compose_services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    services = data["services"]
    assert isinstance(services, dict)
    return services


def _yaml_files(folder: Path) -> list[dict[str, Any]]:
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    assert files, f"no provisioning files in {folder}"
    return [yaml.safe_load(path.read_text()) for path in files]


def _mount_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of each short-syntax volume of a compose service."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


# --------------------------------------------------------------------------- the helpers


def test_promql_parser_finds_metric_names_and_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(v5_a_bucket{route!~"/x|{y}"}'
        "[$__rate_interval]))) / ignoring(arm) group_left sum(increase(v5_b_total[5m] "
        "offset 1m)) * 1e-9 or on(job) vector(0) and v5_c"
    )
    assert promql_metric_names(expr) == {"v5_a_bucket", "v5_b_total", "v5_c"}
    assert promql_selector_labels(expr) == [("v5_a_bucket", {"route"})]
    assert promql_grouping_labels(expr) == {"service", "le", "arm", "job"}
    assert promql_metric_names('sum(rate(v5_nope_total{a="b"}[1m]))') == {"v5_nope_total"}


def test_defined_metrics_are_parsed_from_the_module() -> None:
    defined = defined_metrics()
    assert defined["v5_http_requests_total"] == {"service", "method", "route", "status"}
    assert defined["v5_http_request_duration_seconds_bucket"] == {
        "service",
        "method",
        "route",
        "le",
    }
    assert "v5_reward_success_share_sum" in defined and "v5_recommendations_total" in defined
    assert "v5_http_requests_shed_total" in defined
    assert all(name.startswith("v5_") for name in defined)


# --------------------------------------------------------------------------- metrics


def _series(name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name
    ]


def _value(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_new_metric_series_are_bounded_fixed_sets() -> None:
    metrics.expose_recommendation_series()
    metrics.expose_learning_series()
    recommendations = {(s["arm"], s["comfort"]) for s in _series("v5_recommendations_total")}
    # Every arm with and without comfort, except the comfort arm without comfort.
    expected = {(arm, flag) for arm in ARMS for flag in ("true", "false")} - {("comfort", "false")}
    assert recommendations == expected
    rewards = {(s["arm"], s["event"]) for s in _series("v5_rewards_total")}
    assert rewards == {(arm, event) for arm in ARMS for event in EVENTS}
    assert {s["arm"] for s in _series("v5_reward_success_share_count")} == set(ARMS)
    assert {s["feedback"] for s in _series("v5_weight_feedback_total")} == set(FEEDBACK_TYPES)


def test_every_defined_sample_is_exposed() -> None:
    """What the dashboard may name is what /metrics really serves (prometheus-client leaves
    samples out in some cases, e.g. a histogram's _sum when a bucket is negative)."""
    metrics.expose_recommendation_series()
    metrics.expose_learning_series()
    exposed = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    for name in defined_metrics():
        if name.startswith(("v5_http_",)) or name.endswith("_created"):
            continue  # series made by requests; _created depends on the client's settings
        assert name in exposed, f"{name} is not exposed"


def test_no_metric_is_labelled_by_listener_track_or_request() -> None:
    unbounded = {"user_id", "user", "track_id", "recommendation_id", "request_id", "session_id"}
    for name, labels in defined_metrics().items():
        assert not labels & unbounded, f"{name} has an unbounded label: {labels & unbounded}"


def test_counting_helpers_move_the_right_series() -> None:
    recommended = {"arm": "discovery", "comfort": "true"}
    before = _value("v5_recommendations_total", recommended)
    metrics.count_recommendation("discovery", True)
    assert _value("v5_recommendations_total", recommended) == before + 1

    rewarded = {"arm": "mood_match", "event": "save"}
    count_before = _value("v5_reward_success_share_count", {"arm": "mood_match"})
    sum_before = _value("v5_reward_success_share_sum", {"arm": "mood_match"})
    before = _value("v5_rewards_total", rewarded)
    metrics.count_reward("mood_match", "save", 0.75)
    metrics.count_reward("mood_match", "save", -1.0)
    assert _value("v5_rewards_total", rewarded) == before + 2
    assert _value("v5_reward_success_share_count", {"arm": "mood_match"}) == count_before + 2
    # Observed as (1 + reward) / 2: 0.875 and 0.
    share_sum = _value("v5_reward_success_share_sum", {"arm": "mood_match"})
    assert share_sum == pytest.approx(sum_before + 0.875)

    before = _value("v5_weight_feedback_total", {"feedback": "skip"})
    metrics.count_weight_feedback("skip")
    assert _value("v5_weight_feedback_total", {"feedback": "skip"}) == before + 1


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_every_replica_of_every_service() -> None:
    services = _compose_services()
    jobs = {job["job_name"]: job for job in load_prometheus_config()["scrape_configs"]}
    for name in APP_SERVICES:
        assert name in jobs, f"no scrape job for {name}"
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics", name
        assert "static_configs" not in job, f"{name}: replicas have no fixed addresses"
        discovery = job.get("dns_sd_configs") or []
        assert len(discovery) == 1, f"{name}: one DNS discovery expected"
        sd = discovery[0]
        # An A query returns every replica's address; SRV would need records compose
        # does not publish.
        assert sd.get("type") == "A", name
        assert sd.get("names") == [name], name
        port = str(services[name]["environment"]["PORT"])
        assert str(sd.get("port")) == port, f"{name}: scraped on {sd.get('port')}, serves {port}"
    for name, job in jobs.items():
        for sd in job.get("dns_sd_configs") or []:
            for host in sd["names"]:
                assert host in services, f"job {name} resolves {host!r}, not a compose service"


def test_promtool_accepts_the_prometheus_config() -> None:
    result = promtool_check_config(PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_static_variant(tmp_path: Path) -> None:
    targets = {name: [f"127.0.0.1:{8000 + i}"] for i, name in enumerate(APP_SERVICES)}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(static_prometheus_config(targets)))
    result = promtool_check_config(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_can_fail(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("scrape_configs:\n  - job_name: a\n    scrape_interval: soon\n")
    assert promtool_check_config(path).returncode != 0


# --------------------------------------------------------------------------- Grafana


def _datasources() -> list[dict[str, Any]]:
    return [source for data in _yaml_files(DATASOURCES) for source in data["datasources"]]


def test_datasource_is_the_compose_prometheus() -> None:
    sources = _datasources()
    assert len(sources) == 1
    source = sources[0]
    assert source["type"] == "prometheus"
    assert source.get("uid"), "dashboards refer to the data source by a fixed uid"
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/?", source["url"])
    assert match, source["url"]
    host, port = match.groups()
    services = _compose_services()
    assert host in services, f"{host} is not a compose service"
    assert "observability" in services[host].get("profiles", [])
    command = " ".join(services[host].get("command") or [])
    listen = re.search(r"--web\.listen-address=\S*:(\d+)", command)
    assert port == (listen.group(1) if listen else "9090"), "not Prometheus's port"


def test_dashboard_provider_reads_the_mounted_dashboards() -> None:
    providers = [p for data in _yaml_files(DASHBOARD_PROVIDERS) for p in data["providers"]]
    assert providers
    grafana = _compose_services()["grafana"]
    mounts = _mount_targets(grafana)
    for provider in providers:
        assert provider["type"] == "file"
        path = provider["options"]["path"].rstrip("/")
        assert mounts.get(path) == "./deploy/observability/grafana/dashboards", (
            f"{path} is not where compose mounts the dashboards: {mounts}"
        )
    provisioning = mounts.get("/etc/grafana/provisioning")
    assert provisioning == "./deploy/observability/grafana/provisioning", mounts
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        folder, _, name = home.rpartition("/")
        assert mounts.get(folder) and (ROOT / mounts[folder] / name).is_file(), home


def test_there_is_a_dashboard() -> None:
    assert dashboard_files(), f"no dashboard JSON in {DASHBOARDS}"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_is_valid_with_unique_ids(path: Path) -> None:
    dashboard = load_dashboard(path)
    assert dashboard.get("uid") and dashboard.get("title")
    assert isinstance(dashboard.get("schemaVersion"), int)
    panels = list(all_panels(dashboard))
    assert panels
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    titles = [panel.get("title") for panel in panels if panel.get("type") != "row"]
    assert all(titles) and len(titles) == len(set(titles)), titles
    uid = _datasources()[0]["uid"]
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel.get("type") == "row":
            continue
        assert panel.get("datasource", {}).get("uid") == uid, panel["title"]
        targets = panel.get("targets") or []
        assert targets, f"{panel['title']} has no query"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in targets:
            assert target.get("expr"), panel["title"]
            assert target.get("datasource", {}).get("uid", uid) == uid, panel["title"]


@pytest.mark.parametrize(
    ("dashboard", "title", "expr"),
    [
        pytest.param(*query, id=f"{query[0]}:{query[1]}:{n}")
        for n, query in enumerate(dashboard_queries())
    ],
)
def test_dashboard_queries_use_only_defined_metrics_and_labels(
    dashboard: str, title: str, expr: str
) -> None:
    defined = defined_metrics()
    names = promql_metric_names(expr)
    assert names, f"{dashboard} / {title}: no metric in {expr}"
    unknown = names - set(defined)
    assert not unknown, f"{dashboard} / {title}: not defined in v5_shared.metrics: {unknown}"
    for name, labels in promql_selector_labels(expr):
        missing = labels - defined[name] - TARGET_LABELS
        assert not missing, f"{dashboard} / {title}: {name} has no label(s) {missing}"
    available = set().union(*(defined[name] for name in names)) | TARGET_LABELS
    missing = promql_grouping_labels(expr) - available
    assert not missing, f"{dashboard} / {title}: grouping by unknown label(s) {missing}"
    leftover = set(re.findall(r"\$\w+", evaluable(expr)))
    assert not leftover, f"{dashboard} / {title}: Grafana variables without a stand-in"


def _panel_exprs() -> list[tuple[str, list[str]]]:
    return [
        (panel["title"], [target["expr"] for target in panel.get("targets", [])])
        for path in dashboard_files()
        for panel in all_panels(load_dashboard(path))
        if panel.get("type") != "row"
    ]


def _compact(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


def _panels_where(*patterns: str) -> list[str]:
    """Titles of panels with one query matching every pattern (on whitespace-free text)."""
    found = []
    for title, exprs in _panel_exprs():
        if any(all(re.search(p, _compact(e)) for p in patterns) for e in exprs):
            found.append(title)
    return found


@pytest.mark.parametrize(
    ("what", "patterns"),
    [
        ("request rate per service", [r"sumby\(service\)", r"rate\(v5_http_requests_total"]),
        *(
            (
                f"latency p{round(float(q) * 100)}",
                [
                    rf"histogram_quantile\({re.escape(q)},",
                    r"v5_http_request_duration_seconds_bucket",
                ],
            )
            for q in ("0.5", "0.95", "0.99")
        ),
        ("5xx error rate", [r'status=~"5\.\."', r"v5_http_requests_total"]),
        ("4xx error rate", [r'status=~"4\.\."', r"v5_http_requests_total"]),
        ("shed requests", [r"rate\(v5_http_requests_shed_total"]),
        ("arm choices", [r"sumby\(arm\)", r"rate\(v5_recommendations_total"]),
        ("comfort applied", [r'v5_recommendations_total\{comfort="true"\}']),
        (
            "mean reward by arm",
            [r"sumby\(arm\)", r"v5_reward_success_share_sum", r"v5_reward_success_share_count"],
        ),
        ("reward events by kind", [r"sumby\(event\)", r"v5_rewards_total"]),
        ("weight feedback by kind", [r"sumby\(feedback\)", r"v5_weight_feedback_total"]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_dashboard_has_panel(what: str, patterns: list[str]) -> None:
    assert _panels_where(*patterns), f"no panel shows {what}"


def test_client_and_server_errors_are_separate_panels() -> None:
    server = set(_panels_where(r'status=~"5\.\."'))
    client = set(_panels_where(r'status=~"4\.\."'))
    assert server and client and not server & client
