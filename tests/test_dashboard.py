"""The Grafana dashboard (monitoring/grafana/dashboards/sql-app.json): its structure, and
every query of every panel, run by a real Prometheus against the service as production
serves it.

Grafana itself is not run (it needs Docker here). Prometheus is: Debian's binary, with a
configuration made from monitoring/prometheus/prometheus.yml (the same job, its targets,
every api replica through Docker's DNS, replaced by a live `app serve --workers 2` on
loopback, scraped every second). After traffic of every kind (successes, 404s, 422s,
sign-ups past the hashing queue: 503s), each panel's queries go through Prometheus' HTTP
API as Grafana sends them, and each must return data: a panel that would show "No data"
fails.

Needs Prometheus: `apt-get install -y prometheus` (Debian, Ubuntu; `make test` does it when it
is missing), or PROMETHEUS naming another binary. Without it the test of the queries fails,
unless SKIP_PROMETHEUS_TESTS=1 says to skip it (CI never does).
"""

import asyncio
import contextlib
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.platform.errors import Unavailable
from app.platform.metrics import Metrics
from tests.databases import migrate
from tests.helpers import PASSWORD, unique_email
from tests.monitoring import (
    api_job,
    dashboard,
    metric_names,
    prometheus_config,
    provisioned_datasources,
    targets,
)
from tests.servers import free_port, production_env, serving

SCRAPE_INTERVAL = 1  # seconds, in the test (15 s in the repository's configuration)
START_TIMEOUT = 60  # seconds, for Prometheus to start on a busy machine
TRAFFIC = 4.0  # seconds of steady requests


@pytest.fixture(scope="module")
def prometheus() -> str:
    name = os.environ.get("PROMETHEUS", "prometheus")
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("SKIP_PROMETHEUS_TESTS") == "1":
        pytest.skip(f"SKIP_PROMETHEUS_TESTS=1 and no {name}: the dashboard's queries were not run")
    pytest.fail(
        f"The dashboard's queries are run by Prometheus, and {name!r} is not installed. Install "
        "it (Debian, Ubuntu: `apt-get install -y prometheus`, which `make test` does), or set "
        "PROMETHEUS to a Prometheus binary, or set SKIP_PROMETHEUS_TESTS=1 to skip this test.",
        pytrace=False,
    )


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    (source,) = provisioned_datasources()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service
    # $__rate_interval is built on the scrape interval the datasource declares.
    assert source["jsonData"]["timeInterval"] == prometheus_config()["global"]["scrape_interval"]
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    # Provisioned dashboards have no import step to fill in ${DS_...} placeholders.
    assert "${" not in str(board)
    expected = {"type": "prometheus", "uid": source["uid"]}
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len({panel["title"] for panel in panels})
    assert len({panel["title"] for panel in panels}) == len(panels)
    for panel in panels:
        title = panel["title"]
        assert panel["datasource"] == expected, title
        assert panel["targets"], f"{title} has no query"
        assert panel.get("description"), f"{title} does not say what it shows"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), title
        for target in panel["targets"]:
            assert target["datasource"] == expected, title
            assert target["expr"].strip(), title


def test_the_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} covers {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_the_dashboard_reads_only_metrics_the_service_exposes() -> None:
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    exposed = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes[family.type]
    }
    for panel, target in targets(dashboard()):
        names = metric_names(target["expr"])
        assert names, f"{panel['title']}: no metric in {target['expr']}"
        assert names <= exposed, f"{panel['title']}: {names - exposed} is not exposed"


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """The instant vector `expr` gives at `at` (GET /api/v1/query)."""
        answer = httpx.get(
            f"{self.url}/api/v1/query", params={"query": expr, "time": at}, timeout=30
        )
        body = answer.json()
        assert answer.status_code == 200, (expr, body)
        assert body["status"] == "success", (expr, body)
        assert body["data"]["resultType"] == "vector", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr, time.time())
        return float(result[0]["value"][1]) if result else None


def scrape_config(target: str) -> dict[str, Any]:
    """The repository's configuration, its api job scraping `target` every second."""
    config = prometheus_config()
    job = api_job(config)
    del job["dns_sd_configs"]  # Docker's DNS: here, the one process of the test
    job["static_configs"] = [{"targets": [target]}]
    for section in (config["global"], job):
        if "scrape_interval" in section:
            section["scrape_interval"] = f"{SCRAPE_INTERVAL}s"
            section["scrape_timeout"] = f"{SCRAPE_INTERVAL}s"
    config["global"]["evaluation_interval"] = f"{SCRAPE_INTERVAL}s"
    config["scrape_configs"] = [job]
    return config


@contextlib.contextmanager
def scraping(binary: str, target: str, tmp: Path) -> Iterator[Prometheus]:
    """Prometheus on a free port, scraping `target` as the repository's configuration says."""
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(target)))
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed command line
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=tmp,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{prometheus.url}/-/ready", timeout=5).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def until(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


async def _sign_ups(url: str, count: int) -> list[int]:
    # Each on a connection of its own, all at once: both workers get some.
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post("/users/", json={"email": unique_email(), "password": PASSWORD})
                for _ in range(count)
            )
        )
    return [response.status_code for response in responses]


def overflow_the_hashing_queue(url: str) -> int:
    """Sign-ups at once until some get 503; how many were sent."""
    sent = 0
    for _ in range(5):
        statuses = asyncio.run(_sign_ups(url, 12))
        sent += len(statuses)
        if 503 in statuses:
            return sent
    pytest.fail("12 sign-ups at once never overflowed a hashing queue of 1")


def send_traffic(url: str) -> dict[str, int]:
    """TRAFFIC seconds of reads (200s, 404s for a missing user and an unknown path, 422s)
    between two bursts of sign-ups past the hashing queue (503s): the first makes the
    503s' series, which rate() sees rise only from their second sample on. How many
    requests each of two routes got."""
    sign_ups = overflow_the_hashing_queue(url)
    reads = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        signed_up = client.post("/users/", json={"email": unique_email(), "password": PASSWORD})
        assert signed_up.status_code == 200, signed_up.text
        sign_ups += 1
        expected = {
            f"/users/{signed_up.json()['id']}": 200,
            "/users/987654321": 404,
            "/items/": 200,
            "/items/?limit=1000": 422,
            "/nowhere": 404,
        }
        deadline = time.monotonic() + TRAFFIC
        while time.monotonic() < deadline:
            for path, status in expected.items():
                assert client.get(path).status_code == status, path
            reads += 2
            time.sleep(0.02)
    sign_ups += overflow_the_hashing_queue(url)
    return {"/users/": sign_ups, "/users/{user_id}": reads}


def grafana_expr(expr: str, rate_interval: str) -> str:
    """A target's expression as Grafana sends it to Prometheus."""
    sent = expr.replace("$__rate_interval", rate_interval)
    assert "$" not in sent, f"a Grafana variable this test does not know: {expr}"
    return sent


def test_every_query_of_the_dashboard_returns_data(prometheus: str, tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(database_url)
    env = production_env(
        database_url,
        ACCESS_LOG="false",
        # Production's hashing cost, and a queue of one per worker: sign-ups at once overflow it.
        PASSWORD_HASH_TIME_COST="3",
        PASSWORD_HASH_MEMORY_COST="65536",
        PASSWORD_HASH_QUEUE="1",
    )
    board = dashboard()
    with serving(env, tmp_path, "--workers", "2") as server:
        target = server.url.removeprefix("http://")
        with scraping(prometheus, target, tmp_path) as api:
            until(lambda: api.value('up{job="sql-app"}') == 1, "the service was never scraped")
            started = time.time()
            sent = send_traffic(server.url)

            def scraped() -> dict[str, float | None]:
                return {
                    route: api.value(f'sum(http_requests_total{{route="{route}"}})')
                    for route in sent
                }

            until(lambda: scraped() == sent, "Prometheus never saw all the requests sent")
            at = time.time()
            # What Grafana makes of $__rate_interval for a panel whose range is the
            # traffic's (never less than four scrape intervals).
            rate_interval = f"{max(4 * SCRAPE_INTERVAL, math.ceil(at - started) + 1)}s"
            results = {
                (panel["title"], target["refId"]): api.query(
                    grafana_expr(target["expr"], rate_interval), at
                )
                for panel, target in targets(board)
            }
    for (title, ref_id), series in results.items():
        values = [float(one["value"][1]) for one in series]
        assert any(math.isfinite(value) for value in values), f"{title} ({ref_id}) shows No data"
        if "pid" in _target(board, title, ref_id)["expr"]:  # one series per worker
            assert len({one["metric"].get("pid") for one in series}) == 2, (title, series)

    def by(label: str, title: str, ref_id: str = "A") -> dict[str, float]:
        return {one["metric"][label]: float(one["value"][1]) for one in results[(title, ref_id)]}

    rates = by("route", "Request rate by route")
    for route in ("/users/", "/users/{user_id}", "/items/", "unmatched"):
        assert rates[route] > 0, route
    assert by("route", "Error ratio by route")["/users/"] > 0  # the sign-ups' 503s
    (client_errors,) = results[("Error ratio by route", "B")]
    assert float(client_errors["value"][1]) > 0
    unavailable = by("reason", "503s by reason")
    assert set(unavailable) == set(Unavailable)
    assert unavailable["hashing queue full"] > 0
    for quantile in ("p50", "p95", "p99"):
        assert by("route", f"Latency {quantile} by route")["/users/{user_id}"] > 0


def _target(board: dict[str, Any], title: str, ref_id: str) -> dict[str, Any]:
    (found,) = [
        target
        for panel, target in targets(board)
        if panel["title"] == title and target["refId"] == ref_id
    ]
    return found
