"""The files of monitoring/ (Prometheus' configuration, Grafana's provisioning and dashboard),
read for the tests that check them (test_dashboard.py, test_compose.py)."""

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.databases import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
GRAFANA_PROVISIONING = MONITORING / "grafana" / "provisioning"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
DASHBOARD = DASHBOARDS / "sql-app.json"


def read_yaml(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(path.read_text())
    return found


def prometheus_config() -> dict[str, Any]:
    return read_yaml(PROMETHEUS_CONFIG)


def api_job(config: dict[str, Any], service: str = "api", port: int = 8000) -> dict[str, Any]:
    """The scrape job that finds every replica of `service` through DNS (an A record for
    each), on `port`."""
    jobs = [
        job
        for job in config.get("scrape_configs", [])
        for discovery in job.get("dns_sd_configs", [])
        if discovery.get("names") == [service]
        and discovery.get("type") == "A"
        and discovery.get("port") == port
    ]
    assert len(jobs) == 1, f"no single job scrapes every {service}:{port}: {config}"
    job: dict[str, Any] = jobs[0]
    return job


def provisioned_datasources() -> list[dict[str, Any]]:
    return [
        source
        for path in sorted((GRAFANA_PROVISIONING / "datasources").glob("*.yaml"))
        for source in read_yaml(path).get("datasources", [])
    ]


def dashboard_providers() -> list[dict[str, Any]]:
    return [
        provider
        for path in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.yaml"))
        for provider in read_yaml(path).get("providers", [])
    ]


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


def targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (panel, target) of the dashboard."""
    return [(panel, target) for panel in board["panels"] for target in panel.get("targets", [])]


_NOT_NAMES = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, labels or keywords)."""
    bare = _NOT_NAMES.sub(" ", expr)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", bare))
    return names - _KEYWORDS
