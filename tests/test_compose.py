"""docker-compose.yml, run without a Docker engine, so that it cannot drift from what works.

As `docker compose up` would, the test
- interpolates the file with SECRET_KEY and a POSTGRES_PASSWORD holding `@ : # / %`
  (compose's rules: ${VAR:-default}, ${VAR:?error}, ...; tests/deployment.py);
- takes the services of the default profiles, dependencies first, and waits as their
  depends_on says: service_healthy, until the service's healthcheck command passes;
  service_completed_successfully, until it has exited with 0;
- runs each service built from the Dockerfile: its command (or the image's CMD) with the
  image's ENV overlaid by the service's environment, in an empty working directory;
- runs the `haproxy` service's image as Debian's HAProxy on the file it mounts
  (deploy/haproxy.cfg), its servers the api's process rather than Docker's DNS
  (tests/edge.py);
- maps the hosts to this machine: `db` to the PostgreSQL server of TEST_DATABASE_URL, in
  a fresh database owned by a fresh role with that password (as the postgres image makes
  POSTGRES_DB and POSTGRES_USER); HOST 0.0.0.0 to 127.0.0.1; each service's port to a
  free one. That server trusts local connections, so the password is checked where it
  goes (DATABASE_PASSWORD, as it is), not by logging in (see test_database_password.py).

Skipped, because they need a Docker engine: the `db` image itself (the local server
stands in for it, and its healthcheck, pg_isready, runs against that server), the
`pgbouncer` image and the `prometheus` and `grafana` images (each under a profile, off by
default; their settings and the files they mount are checked below, and
tests/test_dashboard.py runs Prometheus on its configuration and the dashboard's queries).
The api's healthcheck must then pass, and a sign-up and a GET go through HAProxy to it.
"""

import contextlib
import ipaddress
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from tests.databases import PROJECT_ROOT, TEST_DATABASE_URL, postgres_account
from tests.deployment import (
    BASE_PATH,
    COMPOSE_FILE,
    IMAGE_VENV,
    VENV,
    InterpolationError,
    dependencies,
    healthcheck_command,
    interpolate,
    read_compose,
    read_dockerfile,
    seconds,
    start_order,
    wait_until_healthy,
)
from tests.edge import (
    HAPROXY_CONFIG,
    check_config,
    config_for_test,
    haproxy_binary,
    section_of,
    sections,
    setting,
)
from tests.helpers import PASSWORD, unique_email
from tests.monitoring import (
    DASHBOARD,
    api_job,
    dashboard,
    dashboard_providers,
    provisioned_datasources,
    read_yaml,
)
from tests.servers import START_TIMEOUT, Server, free_port

# Each a character that broke the DATABASE_URL compose used to interpolate it into.
POSTGRES_PASSWORD = "p@ss:w#rd/%41"
HAPROXY_CONFIG_IN_IMAGE = "/usr/local/etc/haproxy/haproxy.cfg"  # where its image reads it


def variables(**overrides: str) -> dict[str, str]:
    """What the shell (or .env) gives docker compose to interpolate."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": POSTGRES_PASSWORD,
        **overrides,
    }


def published(service: dict[str, Any]) -> dict[int, int]:
    """`ports` as container port -> host port ("8000:8000", "127.0.0.1:8000:8000")."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        ports[int(container)] = int(host)
    return ports


class Stack:
    """The services `docker compose up` starts, run here (see the module's docstring)."""

    def __init__(self, compose: dict[str, Any], tmp: Path, role: str, database: str) -> None:
        self.services: dict[str, dict[str, Any]] = compose["services"]
        self.image = read_dockerfile()
        self.tmp = tmp
        self.server = make_url(TEST_DATABASE_URL)
        self.role, self.database = role, database
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}  # service -> the free port its published one maps to
        self.started: list[str] = []

    def is_postgres(self, name: str) -> bool:
        return str(self.services[name].get("image", "")).startswith("postgres:")

    def is_haproxy(self, name: str) -> bool:
        return str(self.services[name].get("image", "")).startswith("haproxy:")

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def output(self, name: str) -> str:
        return self.log(name).read_text() if self.log(name).exists() else ""

    def env(self, name: str) -> dict[str, str]:
        """What the service's process sees, with the hosts mapped to this machine."""
        service = self.services[name]
        if self.is_postgres(name):  # its healthcheck runs inside it: the server is local
            return {"PATH": BASE_PATH, "PGHOST": self.host, "PGPORT": self.port}
        assert service.get("build") == ".", f"{name}: no stand-in for {service.get('image')}"
        env = {key: value.replace(IMAGE_VENV, VENV) for key, value in self.image.env.items()}
        env |= {key: str(value) for key, value in service.get("environment", {}).items()}
        if "DATABASE_URL" in env:
            env["DATABASE_URL"] = self.mapped_url(env["DATABASE_URL"])
        if env.get("HOST") == "0.0.0.0":  # noqa: S104 - all of the container's interfaces
            env["HOST"] = "127.0.0.1"
        for container in published(service):
            assert env.get("PORT") == str(container), f"{name} publishes {container}, not PORT"
        if "PORT" in env:  # its container's own port: here, one free on this machine
            env["PORT"] = str(self.ports.setdefault(name, free_port()))
        return env

    @property
    def host(self) -> str:
        return self.server.host or "127.0.0.1"

    @property
    def port(self) -> str:
        return str(self.server.port or 5432)

    def mapped_url(self, value: str) -> str:
        url = make_url(value)
        target = self.services.get(url.host or "")
        if target is None or not self.is_postgres(url.host or ""):
            return value
        # The role and database the postgres image would make, here under fresh names.
        made = target["environment"]
        assert (url.username, url.database) == (made["POSTGRES_USER"], made["POSTGRES_DB"])
        assert url.password is None, "the password goes in DATABASE_PASSWORD, not in the URL"
        return url.set(
            host=self.host, port=int(self.port), username=self.role, database=self.database
        ).render_as_string(hide_password=False)

    def healthcheck(self, name: str) -> tuple[list[str], float]:
        """The service's healthcheck (the image's, for services built from it)."""
        check = self.services[name].get("healthcheck")
        if check is None:
            assert self.services[name].get("build"), f"{name} has no healthcheck"
            return self.image.healthcheck, 30.0
        return healthcheck_command(check["test"]), seconds(check.get("timeout", "30s"))

    def wait_for(self, name: str, condition: str) -> None:
        if condition == "service_healthy":
            command, timeout = self.healthcheck(name)
            process = self.processes.get(name)
            try:
                wait_until_healthy(
                    command,
                    self.env(name),
                    self.tmp,
                    timeout=timeout,
                    deadline=time.monotonic() + START_TIMEOUT,
                    alive=None if process is None else (lambda: process.poll() is None),
                )
            except AssertionError as error:
                raise AssertionError(f"{name}: {error}\n{self.output(name)}") from None
        elif condition == "service_completed_successfully":
            status = self.processes[name].wait(timeout=START_TIMEOUT)
            assert status == 0, f"{name} exited with {status}:\n{self.output(name)}"
        else:
            assert condition == "service_started", condition

    def start(self, name: str) -> None:
        service = self.services[name]
        for dependency, options in dependencies(service).items():
            if dependency in self.started:  # not when it is under a profile left off
                self.wait_for(dependency, options.get("condition", "service_started"))
        self.started.append(name)
        if self.is_postgres(name):
            return  # the local server stands in for the image
        if self.is_haproxy(name):
            self.start_haproxy(name)
            return
        command = service.get("command", self.image.cmd)
        workdir = self.tmp / name  # the image's WORKDIR: no .env in it
        workdir.mkdir()
        with self.log(name).open("wb") as output:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - the compose file's command
                command, cwd=workdir, env=self.env(name), stdout=output, stderr=subprocess.STDOUT
            )

    def start_haproxy(self, name: str) -> None:
        """Debian's HAProxy on the file the service mounts, in front of the api's process."""
        config = bind_mounts(self.services[name])[HAPROXY_CONFIG_IN_IMAGE]
        (upstream,) = self.upstreams(config)
        test_config = self.tmp / "haproxy.cfg"
        test_config.write_text(
            config_for_test(
                self.ports.setdefault(name, free_port()),
                [self.ports[upstream]],
                self.tmp / "haproxy.sock",
            )
        )
        with self.log(name).open("wb") as output:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - the test's binary and file
                [haproxy_binary(), "-db", "-f", str(test_config)],
                cwd=self.tmp,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def upstreams(self, config: Path) -> list[str]:
        """The services whose replicas HAProxy's configuration finds through Docker's DNS."""
        backend = section_of(sections(config.read_text()), "backend")
        _prefix, _count, address, *_ = setting(backend, "server-template").split()
        service, port = address.split(":")
        assert self.services[service]["environment"]["PORT"] == port, address
        return [service]

    @contextlib.contextmanager
    def up(self) -> Iterator["Stack"]:
        try:
            for name in start_order(self.services, profiles=set()):
                self.start(name)
            yield self
        finally:
            for process in self.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
                if process.poll() is None:
                    process.kill()
                    process.wait()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")
def test_compose_up_serves(tmp_path: Path) -> None:
    compose = read_compose(variables())
    db = compose["services"]["db"]["environment"]
    with postgres_account(TEST_DATABASE_URL, db["POSTGRES_PASSWORD"]) as (role, database):
        stack = Stack(compose, tmp_path, role, database)
        with stack.up():
            assert stack.started == ["db", "migrate", "api", "haproxy"]
            # What the local server cannot check (it trusts local connections): the
            # password each service is given is POSTGRES_PASSWORD, as it is.
            for name in ("migrate", "api"):
                assert stack.env(name)["DATABASE_PASSWORD"] == POSTGRES_PASSWORD
            stack.wait_for("api", "service_healthy")
            # Through HAProxy, once its checks have found the api ready.
            url = f"http://127.0.0.1:{stack.ports['haproxy']}"
            with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
                deadline = time.monotonic() + START_TIMEOUT
                while (ready := client.get("/health/ready")).status_code != 200:
                    assert time.monotonic() < deadline, (ready.text, stack.output("haproxy"))
                    time.sleep(0.2)
                account = {"email": unique_email(), "password": PASSWORD}
                signed_up = client.post("/users/", json=account)
                assert signed_up.status_code == 200, signed_up.text
                user = client.get(f"/users/{signed_up.json()['id']}")
                assert user.status_code == 200
                assert user.json()["email"] == account["email"]
            api = Server(stack.processes["api"], url, stack.log("api"))
            # SIGTERM: the api drains, then stops, within the time Docker gives it.
            stopping = time.monotonic()
            assert api.stop() in (0, -signal.SIGTERM), api.output()
            stopped_after = time.monotonic() - stopping
        api_service = compose["services"]["api"]
        assert stopped_after < seconds(api_service["stop_grace_period"]), stopped_after
        assert stopped_after >= float(api_service["environment"]["SHUTDOWN_DRAIN_SECONDS"])
        # Access lines stay on in compose: JSON, one a request, on the api's output.
        lines = [json.loads(line) for line in api.output().splitlines() if line.startswith("{")]
        access = [
            (line["method"], line["route"], line["status"])
            for line in lines
            if line["logger"] == "app.access"
        ]
        assert ("POST", "/users/", 200) in access
        assert ("GET", "/users/{user_id}", 200) in access


def test_the_services_run_what_the_image_runs() -> None:
    services = read_compose(variables())["services"]
    image = read_dockerfile()
    assert services["migrate"]["command"] == ["app", "migrate"]
    assert services["api"]["command"] == image.cmd == ["app", "serve"]
    # The api's healthcheck is the image's, and asks for readiness.
    assert services["api"]["healthcheck"]["test"] == ["CMD", *image.healthcheck]
    assert "/health/ready" in image.healthcheck[-1]
    # The image listens on every interface of its container, on the port HAProxy reaches;
    # the api publishes none (`--scale api=N`): HAProxy publishes the API's port.
    assert image.env["HOST"] == "0.0.0.0"  # noqa: S104
    assert "ports" not in services["api"]
    assert services["api"]["expose"] == [image.env["PORT"]]
    assert services["api"]["environment"]["PORT"] == image.env["PORT"]
    assert set(published(services["haproxy"])) == {int(image.env["PORT"])}
    for name in ("migrate", "api"):
        assert services[name]["build"] == "."
        assert "ACCESS_LOG" not in services[name]["environment"]  # on, as by default


def test_pgbouncer_is_a_profile_in_front_of_db() -> None:
    plain = read_compose(variables())["services"]
    assert plain["pgbouncer"]["profiles"] == ["pgbouncer"]
    assert "pgbouncer" not in start_order(plain, profiles=set())
    assert make_url(plain["api"]["environment"]["DATABASE_URL"]).host == "db"
    assert plain["api"]["environment"]["DB_PGBOUNCER"] == "false"

    services = read_compose(variables(API_DB_HOST="pgbouncer", DB_PGBOUNCER="true"))["services"]
    order = start_order(services, profiles={"pgbouncer"})
    assert order.index("db") < order.index("pgbouncer") < order.index("api")
    bouncer, db = services["pgbouncer"]["environment"], services["db"]["environment"]
    assert bouncer["POOL_MODE"] == "transaction"
    assert bouncer["DB_HOST"] == "db"
    assert bouncer["AUTH_TYPE"] == "scram-sha-256"  # how the postgres image stores passwords
    assert (bouncer["DB_USER"], bouncer["DB_NAME"]) == (db["POSTGRES_USER"], db["POSTGRES_DB"])
    assert bouncer["DB_PASSWORD"] == db["POSTGRES_PASSWORD"] == POSTGRES_PASSWORD
    api = services["api"]["environment"]
    url = make_url(api["DATABASE_URL"])
    assert (url.host, url.port, url.username, url.database) == ("pgbouncer", 5432, "app", "app")
    assert api["DB_PGBOUNCER"] == "true"
    assert services["api"]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    # Migrations go straight to PostgreSQL.
    assert make_url(services["migrate"]["environment"]["DATABASE_URL"]).host == "db"


# An image named down to its patch version: the same image on every machine, until changed here.
PINNED = re.compile(r"[a-z0-9./-]+:v?\d+\.\d+\.\d+")


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """The service's files from the repository: where it sees each -> the file here."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def test_the_monitoring_profile_scrapes_the_api_and_provisions_grafana() -> None:
    compose = read_compose(variables())
    services = compose["services"]
    assert "prometheus" not in start_order(services, profiles=set())
    assert "grafana" not in start_order(services, profiles=set())
    order = start_order(services, profiles={"monitoring"})
    assert order.index("prometheus") < order.index("grafana")
    assert {"db", "migrate", "api"} <= set(order)  # what they watch starts with them
    for name in ("prometheus", "grafana"):
        service = services[name]
        assert service["profiles"] == ["monitoring"]
        assert PINNED.fullmatch(service["image"]), service["image"]
        for target, file in bind_mounts(service).items():
            assert file.is_relative_to(PROJECT_ROOT), (name, target, file)
            assert file.exists(), f"{name} mounts {file}, which is not in the repository"
        for volume in service.get("volumes", []):
            named = str(volume).split(":")[0]
            if not named.startswith((".", "/")):
                assert named in compose["volumes"], f"{name}: volume {named} is not declared"

    # Prometheus reads the repository's configuration where its image looks for it, and
    # scrapes the api where it listens.
    prometheus = services["prometheus"]
    assert "command" not in prometheus  # the image's: --config.file=/etc/prometheus/...
    config = read_yaml(bind_mounts(prometheus)["/etc/prometheus/prometheus.yml"])
    port = services["api"]["environment"]["PORT"]
    job = api_job(config, "api", int(port))  # every replica, not one through HAProxy
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scheme", "http") == "http"
    assert services["api"]["environment"].get("METRICS_ENABLED", "true") == "true"

    # Grafana: its provisioning where it reads it, the datasource is that Prometheus, the
    # dashboards' provider reads the directory the dashboard is mounted in.
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    for kind in ("datasources", "dashboards"):
        assert mounts[f"/etc/grafana/provisioning/{kind}"] == DASHBOARD.parents[1] / (
            f"provisioning/{kind}"
        )
    (datasource,) = provisioned_datasources()
    (listens_on,) = published(prometheus)  # Prometheus' port (9090), published
    assert datasource["url"] == f"http://prometheus:{listens_on}"
    (provider,) = dashboard_providers()
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    assert dashboard()["uid"]
    # Anonymous viewers, on this machine only; editing needs the admin's password.
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert published(grafana) == {3000: 3000}
    assert all(str(entry).startswith("127.0.0.1:") for entry in grafana["ports"])
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "admin"
    chosen = read_compose(variables(GRAFANA_ADMIN_PASSWORD="s3cret"))["services"]["grafana"]
    assert chosen["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(InterpolationError, match="SECRET_KEY"):
        read_compose({"POSTGRES_PASSWORD": POSTGRES_PASSWORD})
    services = read_compose({"SECRET_KEY": "k" * 40})["services"]
    assert services["api"]["environment"]["DATABASE_PASSWORD"] == "app"  # the default


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A:-x}", {"A": "a"}, "a"),
        ("${A-x}", {"A": ""}, ""),
        ("${A-x}", {}, "x"),
        ("${A:+y}", {"A": "a"}, "y"),
        ("${A:+y}", {"A": ""}, ""),
        ("$A/${B}", {"A": "a", "B": "b"}, "a/b"),
        ("$$A", {"A": "a"}, "$A"),
        ("${A}", {}, ""),
        ("${A:?}", {"A": "p@ss:w#rd/%41"}, "p@ss:w#rd/%41"),
    ],
)
def test_interpolation_follows_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    ("text", "env"), [("${A:?needed}", {"A": ""}), ("${A?needed}", {}), ("$", {})]
)
def test_interpolation_errors_follow_compose(text: str, env: dict[str, str]) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, env)


def test_haproxy_fronts_every_api_replica_with_a_valid_configuration() -> None:
    services = read_compose(variables())["services"]
    proxy, api = services["haproxy"], services["api"]
    assert PINNED.fullmatch(proxy["image"]), proxy["image"]
    assert proxy["image"].startswith("haproxy:2.6."), proxy["image"]  # as Debian's, tested
    assert "command" not in proxy  # the image's: haproxy -f /usr/local/etc/haproxy/haproxy.cfg
    mounts = bind_mounts(proxy)
    assert mounts == {HAPROXY_CONFIG_IN_IMAGE: HAPROXY_CONFIG}
    assert HAPROXY_CONFIG.exists()
    checked = check_config(HAPROXY_CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "haproxy" in start_order(services, profiles=set())

    found = sections(HAPROXY_CONFIG.read_text())
    frontend, backend = section_of(found, "frontend"), section_of(found, "backend")
    # It listens where compose publishes it, and finds the api replicas by the service's
    # name, on their port, through Docker's DNS, asking each whether it is ready.
    (listens_on,) = published(proxy)
    assert setting(frontend, "bind") == f":{listens_on}"
    template = setting(backend, "server-template").split()
    assert template[2] == f"api:{api['environment']['PORT']}"  # after the names, how many
    assert "resolvers" in template
    assert (
        template[template.index("resolvers") + 1]
        == section_of(found, "resolvers").header.split()[1]
    )
    assert setting(backend, "http-check send") == "meth GET uri /health/ready"

    # A stopping replica drains longer than HAProxy takes to take it out, and drain and
    # grace end before Docker kills it.
    checks = setting(backend, "default-server").split()
    interval = seconds(checks[checks.index("inter") + 1])
    fall = int(checks[checks.index("fall") + 1])
    drain = float(api["environment"]["SHUTDOWN_DRAIN_SECONDS"])
    assert drain > interval * fall
    grace = float(api["environment"].get("GRACEFUL_SHUTDOWN_TIMEOUT", 8))
    assert drain + grace < seconds(api["stop_grace_period"])

    # The api believes the X-Forwarded-For of what connects from the compose network alone,
    # where HAProxy is.
    (network,) = compose_subnets(read_compose(variables()))
    assert ipaddress.ip_network(api["environment"]["TRUSTED_PROXIES"]) == network


def compose_subnets(compose: dict[str, Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The subnets of the default network, as its IPAM configuration fixes them."""
    return [
        ipaddress.ip_network(entry["subnet"])
        for entry in compose["networks"]["default"]["ipam"]["config"]
    ]
