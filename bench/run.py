"""The project's benchmark (`make bench`). Prints figures beside their ceilings; asserts nothing.

Builds a PostgreSQL database through the project's own migrations, fills it with
10k users and 50k items, serves the app the way production does (`python -m app`:
uvicorn with uvloop and httptools, one process, ENVIRONMENT=production, so JSON access
logs, request ids and metrics all on) and drives every route with wrk. The seed's
sync app and the bare-asyncpg ceilings (the reference apps beside this script: see
bench/README.md) are served from the same data in the same run, rounds interleaved,
and every figure comes with its ratios and the target it is held to.

Rows beside the default project server: "quiet" (ACCESS_LOG=false,
METRICS_ENABLED=false: what observability costs) and "2 workers" (`--workers 2`).
Then GET /users/{id} through HAProxy, configured by deploy/haproxy.cfg as the tests run
it (tests/edge.py), in front of one and of two app processes, beside one process alone.

Env: PG (postgresql://postgres@127.0.0.1:5432), SECS (8 per measurement),
ROUNDS (3; medians are printed), MEMORY_SECS (60; 0 skips the memory and sign-up
figures), ONLY (routes whose text contains it, e.g. "items"; "haproxy": the HAProxy rows;
"replica": reads from a primary alone and beside its streaming replica).
"""

import asyncio
import importlib.util
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = os.environ.get("PG", "postgresql://postgres@127.0.0.1:5432")
SECS = int(os.environ.get("SECS", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MEMORY_SECS = int(os.environ.get("MEMORY_SECS", "60"))
ONLY = os.environ.get("ONLY", "")
PORT = 8901
PASSWORD = "benchmark password"
SECRET_KEY = secrets.token_urlsafe(48)
FILL_USERS = """INSERT INTO users (email, hashed_password, is_active)
    SELECT 'u' || g || '@example.com', $1, true FROM generate_series(1, 10000) g"""
FILL_ITEMS = """INSERT INTO items (title, description, owner_id)
    SELECT 'item ' || g, 'desc ' || g, 1 + (g % 10000) FROM generate_series(1, 50000) g"""
# The reference apps beside this script, by the module that serves them.
BASELINES = {
    "seed": "seed_sync_app",
    "limit": "limit_app",
    "limit_json": "limit_json_app",
    "limit_items": "limit_items_app",
}
# The project, served three ways.
PROJECT = {
    "project": ([], {}),
    "quiet": ([], {"ACCESS_LOG": "false", "METRICS_ENABLED": "false"}),
    "2 workers": (["--workers", "2"], {}),
}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    refused: int = 0  # 412s of PATCH races (an outcome, not an error)


@dataclass
class Scenario:
    route: str
    script: str
    apps: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Rows (route, app) the project's figure is divided by, and the target it is held to.
    seed: tuple[str, str] | None = None
    ceiling: tuple[str, str] | None = None
    target: str = ""


USERS = "GET /users/{id}"
ITEMS_SKIP = "GET /items/?skip="
CREATE_FOR = "POST /users/{id}/items/"
SCENARIOS = [
    Scenario(
        USERS,
        "get_user.lua",
        ["seed", "limit", "limit_json", "project", "quiet", "2 workers"],
        seed=(USERS, "seed"),
        ceiling=(USERS, "limit_json"),
        target="/limit_json >= 0.65, p99 <= 1.5x",
    ),
    Scenario(
        ITEMS_SKIP,
        "page.lua",
        ["seed", "limit_items", "project"],
        env={"PAGE": "/items/?skip=", "PAGE_MAX": "10000"},
        seed=(ITEMS_SKIP, "seed"),
        ceiling=(ITEMS_SKIP, "limit_items"),
        target="/limit_items >= 0.7, p99 <= 1.5x",
    ),
    Scenario(
        "GET /items/?after=",
        "page.lua",
        ["project"],
        env={"PAGE": "/items/?after=", "PAGE_MAX": "49900"},
        seed=(ITEMS_SKIP, "seed"),
        ceiling=(ITEMS_SKIP, "limit_items"),
        target="/limit_items >= 0.7, p99 <= 1.5x",
    ),
    Scenario(
        "GET /users/?skip=",
        "page.lua",
        ["seed", "project"],
        env={"PAGE": "/users/?skip=", "PAGE_MAX": "9900"},
        seed=("GET /users/?skip=", "seed"),
        target="/seed >= 6",
    ),
    Scenario(
        CREATE_FOR,
        "post_item.lua",
        ["seed", "project"],
        seed=(CREATE_FOR, "seed"),
        target="/seed >= 3",
    ),
    Scenario(
        "POST /items/",
        "post_own_item.lua",
        ["project"],
        seed=(CREATE_FOR, "seed"),
        target="/seed >= 3",
    ),
    Scenario(
        "PATCH /items/{id}",
        "patch_item.lua",
        ["project"],
        seed=(CREATE_FOR, "seed"),
        target="/seed >= 3",
    ),
]


def dsn(database: str, driver: str = "") -> str:
    parts = urllib.parse.urlsplit(PG)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{parts.netloc}/{database}"


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _field(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"unexpected wrk output:\n{text}")
    return found.group(1)


def wrk(script: str, conns: int, secs: int = SECS, port: int = PORT, **env: str) -> Load:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{secs}s",
            "--latency",
            "-s",
            str(HERE / script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    requests, refused = _counts(out)
    # Only PATCH may be refused (412, lost races), and only rarely.
    if refused and (script != "patch_item.lua" or refused > requests / 100):
        raise SystemExit(f"{refused} error responses ({script}, {env}):\n{out}")
    return Load(
        float(_field(r"Requests/sec:\s+([\d.]+)", out)),
        _ms(_field(r"\s50%\s+(\S+)", out)),
        _ms(_field(r"\s99%\s+(\S+)", out)),
        refused,
    )


def _counts(out: str) -> tuple[int, int]:
    """Requests wrk sent, and how many of them were answered with an error status."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(_field(r"(\d+) requests in", out)), int(errors.group(1)) if errors else 0


def median(loads: list[Load]) -> Load:
    return Load(*(statistics.median(getattr(x, f) for x in loads) for f in Load.__annotations__))


def build() -> None:
    """bench_app through the project's migrations; bench_seed through the seed's create_all."""
    asyncio.run(create_databases())
    env = {**os.environ, "DATABASE_URL": dsn("bench_app", "asyncpg")}
    migrate = [sys.executable, "-c", "from app.cli import main; main(['migrate'])"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    # The seed builds its own schema when imported.
    env = {**os.environ, "DATABASE_URL": dsn("bench_seed", "psycopg2")}
    subprocess.run([sys.executable, "-c", "import seed_sync_app"], cwd=HERE, env=env, check=True)
    asyncio.run(fill())


async def create_databases() -> None:
    admin = await asyncpg.connect(dsn("postgres"))
    for name in ("bench_app", "bench_seed"):
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()


async def fill() -> None:
    from pwdlib import PasswordHash

    db = await asyncpg.connect(dsn("bench_app"))
    # Every user's password is PASSWORD; user 1 is a superuser (it writes for anyone).
    await db.execute(FILL_USERS, PasswordHash.recommended().hash(PASSWORD))
    await db.execute(FILL_ITEMS)
    await db.execute("UPDATE users SET is_superuser = true WHERE id = 1; ANALYZE")
    await db.close()
    db = await asyncpg.connect(dsn("bench_seed"))
    await db.execute(FILL_USERS, "x")
    await db.execute(FILL_ITEMS)
    # The tutorial's schema has no index on items.owner_id; its GET /users/{id} would
    # scan every item without one, which would measure the schema, not the app.
    await db.execute("CREATE INDEX ix_seed_items_owner ON items (owner_id); ANALYZE")
    await db.close()


async def forget_writes(database: str) -> None:
    """Undo what a write benchmark did, so that every round starts from the same data."""
    db = await asyncpg.connect(dsn(database))
    await db.execute("DELETE FROM items WHERE id > 50000")
    if database == "bench_app":  # changed items go back to version 1 (patch_item.lua)
        await db.execute("UPDATE items SET title = 'item ' || id, version = 1 WHERE version > 1")
    await db.execute("VACUUM ANALYZE items")  # dead rows would slow the next reads
    await db.close()


@contextmanager
def serving(app: str, port: int = PORT) -> Iterator[int]:
    if app in PROJECT:
        args, overrides = PROJECT[app]
        command, cwd = [sys.executable, "-m", "app", *args], ROOT
        env = {
            "DATABASE_URL": dsn("bench_app", "asyncpg"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ENVIRONMENT": "production",
            "SECRET_KEY": SECRET_KEY,  # one for all: a token is good on every process
            **overrides,
        }
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--no-access-log",
            "--log-level",
            "warning",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            f"{BASELINES[app]}:app",
        ]
        cwd = HERE
        env = {"DATABASE_URL": dsn("bench_seed", "psycopg2"), "PG_DSN": dsn("bench_app")}
    # The server's output goes to a file, not a pipe: a full pipe would block it. The
    # access lines are written all the same: their cost is part of the figures.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=log
        )
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/users/1", timeout=2).close()
                    break
                except (urllib.error.URLError, ConnectionError):
                    if process.poll() is not None:
                        log.seek(0)
                        raise SystemExit(f"{app} did not start:\n{log.read().decode()}") from None
                    time.sleep(0.1)
            wrk("get_user.lua", 64, secs=2, port=port)  # warm up: connections, statements
            yield process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a backlog of requests it would still serve
                process.kill()
                process.wait()


def token() -> str:
    form = urllib.parse.urlencode({"username": "u1@example.com", "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/auth/token", form, timeout=30) as r:
        return str(_field(r'"access_token":"([^"]+)"', r.read().decode()))


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (those still alive)."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_per_request(pid: int, script: str, **env: str) -> tuple[Load, float, float]:
    """A load on the server `pid`, with the CPU time per request its process and
    PostgreSQL's took, in microseconds (PostgreSQL on this machine only)."""
    before = cpu_seconds([pid]), cpu_seconds(postgres_pids())
    load = wrk(script, 64, **env)
    after = cpu_seconds([pid]), cpu_seconds(postgres_pids())
    requests = load.rps * SECS
    return load, *((a - b) / requests * 1e6 for a, b in zip(after, before, strict=True))


def rss_mib(pid: int) -> float:
    return int(_field(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())) / 1024


def memory(pid: int) -> tuple[float, float, float]:
    """Worker RSS under MEMORY_SECS of GET load: max of the first 20 s, of the last 20 s, end."""
    load = subprocess.Popen(
        [
            "wrk",
            "-t1",
            "-c64",
            f"-d{MEMORY_SECS}s",
            "-s",
            str(HERE / "get_user.lua"),
            f"http://127.0.0.1:{PORT}",
        ],
        stdout=subprocess.DEVNULL,
    )
    samples, start = [], time.monotonic()
    while load.poll() is None:
        samples.append((time.monotonic() - start, rss_mib(pid)))
        time.sleep(1)
    first = max(mib for t, mib in samples if t <= 20)
    last = max(mib for t, mib in samples if t >= samples[-1][0] - 20)
    return first, last, samples[-1][1]


def measure() -> dict[tuple[str, str], Load]:
    """Every scenario on every app that takes part, ROUNDS times, rounds interleaved;
    every measurement on a freshly started server. Medians by (route, app)."""
    rows: dict[tuple[str, str], list[Load]] = {}
    for round_ in range(1, ROUNDS + 1):
        for scenario in SCENARIOS:
            for app in scenario.apps:
                if ONLY not in scenario.route:
                    continue
                with serving(app):
                    env = dict(scenario.env)
                    if app in PROJECT and scenario.script != "page.lua":
                        env["TOKEN"] = token()
                    load = wrk(scenario.script, 64, **env)
                rows.setdefault((scenario.route, app), []).append(load)
                if scenario.route.startswith(("POST", "PATCH")):
                    asyncio.run(forget_writes("bench_seed" if app == "seed" else "bench_app"))
        print(f"round {round_} done", flush=True)
    return {key: median(loads) for key, loads in rows.items()}


HAPROXY_ROWS = ("1 process", "HAProxy + 1", "HAProxy + 2")


def behind_haproxy() -> dict[str, Load]:
    """GET /users/{id} at 64 connections: one process alone, then HAProxy (deploy/haproxy.cfg)
    in front of one process and of two, ROUNDS times interleaved; medians."""
    sys.path.insert(0, str(ROOT))  # the tests' HAProxy, as they run the repository's file
    from tests.edge import haproxy, server_names

    rows: dict[str, list[Load]] = {}
    for _ in range(ROUNDS):
        with serving("project"):
            rows.setdefault(HAPROXY_ROWS[0], []).append(wrk("get_user.lua", 64))
        for count, row in ((1, HAPROXY_ROWS[1]), (2, HAPROXY_ROWS[2])):
            ports = [PORT + 1 + index for index in range(count)]
            with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
                for port in ports:
                    stack.enter_context(serving("project", port))
                proxy = stack.enter_context(haproxy(ports, Path(tmp)))
                for name in server_names(count):
                    proxy.wait_for(name, "UP")
                listen = int(proxy.url.rsplit(":", 1)[1])
                wrk("get_user.lua", 64, secs=2, port=listen)  # its connections to the apps
                rows.setdefault(row, []).append(wrk("get_user.lua", 64, port=listen))
    return {row: median(loads) for row, loads in rows.items()}


REPLICA_ROWS = ("primary alone", "primary + replica")


def with_a_replica() -> dict[tuple[str, str], Load]:
    """GET /users/{id} and item pages (no Consistency-Token: a replica may answer) from a
    private primary alone, then with its streaming replica beside it (tests/replication.py:
    `initdb`, `pg_basebackup -R`, ports of their own), ROUNDS times interleaved; medians."""
    sys.path.insert(0, str(ROOT))  # the tests' private cluster
    from tests.replication import available, replicated_cluster

    why_not = available()
    if why_not is not None:
        print(f"replica rows skipped: {why_not}")
        return {}
    rows: dict[tuple[str, str], list[Load]] = {}
    with replicated_cluster() as cluster:
        cluster.psql(cluster.primary_port, "CREATE DATABASE bench_app")
        primary = cluster.primary_url("bench_app")
        env = {**os.environ, "DATABASE_URL": primary}
        migrate = [sys.executable, "-c", "from app.cli import main; main(['migrate'])"]
        subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
        for statement in (FILL_USERS.replace("$1", "'x'"), FILL_ITEMS, "ANALYZE"):
            cluster.psql(cluster.primary_port, statement, "bench_app")
        cluster.wait_caught_up()
        PROJECT[REPLICA_ROWS[0]] = ([], {"DATABASE_URL": primary})
        PROJECT[REPLICA_ROWS[1]] = (
            [],
            {"DATABASE_URL": primary, "DATABASE_REPLICA_URL": cluster.replica_url("bench_app")},
        )
        pages = {"PAGE": "/items/?after=", "PAGE_MAX": "49900"}
        for _ in range(ROUNDS):
            for row in REPLICA_ROWS:
                with serving(row):
                    time.sleep(1)  # the replica checked, in
                    rows.setdefault((USERS, row), []).append(wrk("get_user.lua", 64))
                    pages_row = ("GET /items/?after=", row)
                    rows.setdefault(pages_row, []).append(wrk("page.lua", 64, **pages))
    return {key: median(loads) for key, loads in rows.items()}


def report_replica(rows: dict[tuple[str, str], Load]) -> None:
    header = f"{'reads, no token (64 conns)':<28}{'':<20}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
    print(f"\n{header}{'/alone':>8}")
    for route in (USERS, "GET /items/?after="):
        alone = rows[(route, REPLICA_ROWS[0])]
        for row in REPLICA_ROWS:
            load = rows[(route, row)]
            print(
                f"{route:<28}{row:<20}{load.rps:>8.0f}{load.p50_ms:>8.1f}{load.p99_ms:>8.1f}"
                f"{load.rps / alone.rps:>8.2f}"
            )
    print(
        f"({os.cpu_count()} cores shared by the primary, the replica, the app and wrk: the "
        "replica takes reads off the primary, it adds no core)"
    )


def report_haproxy(rows: dict[str, Load]) -> None:
    alone = rows[HAPROXY_ROWS[0]]
    print(f"\n{USERS + ' (64 conns)':<28}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'/alone':>8}")
    for row in HAPROXY_ROWS:
        load = rows[row]
        print(
            f"{row:<28}{load.rps:>8.0f}{load.p50_ms:>8.1f}{load.p99_ms:>8.1f}"
            f"{load.rps / alone.rps:>8.2f}"
        )
    print(
        f"({os.cpu_count()} cores shared by PostgreSQL, the app processes, HAProxy and wrk: "
        "a second process gains only what the others leave of the cores)"
    )


def report(rows: dict[tuple[str, str], Load]) -> None:
    def ratio(value: float, base: Load | None, attribute: str) -> str:
        return f"{value / getattr(base, attribute):.2f}" if base else ""

    print(
        f"\n{'route (64 conns)':<24}{'app':<12}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'/seed':>7}{'/ceil':>7}{'p99/ceil':>9}  target"
    )
    for scenario in SCENARIOS:
        for app in scenario.apps:
            load = rows.get((scenario.route, app))
            if load is None:
                continue
            vs_seed = vs_ceiling = p99_vs = target = ""
            if app in PROJECT:
                seed = rows.get(scenario.seed) if scenario.seed else None
                ceiling = rows.get(scenario.ceiling) if scenario.ceiling else None
                vs_seed = ratio(load.rps, seed, "rps")
                vs_ceiling = ratio(load.rps, ceiling, "rps")
                p99_vs = ratio(load.p99_ms, ceiling, "p99_ms")
                target = scenario.target if app == "project" else ""
            if load.refused:
                target += f" ({load.refused:.0f} x 412: races lost)"
            print(
                f"{scenario.route:<24}{app:<12}{load.rps:>8.0f}{load.p50_ms:>8.1f}"
                f"{load.p99_ms:>8.1f}{vs_seed:>7}{vs_ceiling:>7}{p99_vs:>9}  {target}"
            )
    on, off, two = (rows.get((USERS, app)) for app in ("project", "quiet", "2 workers"))
    if on and off and two:
        print(
            f"\n{USERS}: logs, metrics and request ids on / off: {on.rps / off.rps:.2f} "
            f"(target >= 0.9); 2 workers / 1: {two.rps / on.rps:.2f}"
        )


def main() -> None:
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if importlib.util.find_spec("psycopg2") is None:
        raise SystemExit("bench/seed_sync_app.py needs psycopg2: `make bench` installs it")
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{machine}; {ROUNDS} x {SECS} s", flush=True)
    build()
    rows = measure()
    proxied = behind_haproxy() if ONLY in "haproxy" else {}
    replicated = with_a_replica() if ONLY in "replica" else {}
    if not MEMORY_SECS:
        if rows:
            report(rows)
        if proxied:
            report_haproxy(proxied)
        if replicated:
            report_replica(replicated)
        return

    with serving("project") as pid:
        costs = {
            USERS: cpu_per_request(pid, "get_user.lua"),
            ITEMS_SKIP: cpu_per_request(pid, "page.lua", **SCENARIOS[1].env),
            "POST /items/": cpu_per_request(pid, "post_own_item.lua", TOKEN=token()),
        }
        asyncio.run(forget_writes("bench_app"))
        alone = wrk("get_user.lua", 64)
        signups = subprocess.Popen(
            [
                "wrk",
                "-t1",
                "-c8",
                f"-d{SECS + 4}s",
                "-s",
                str(HERE / "sign_up.lua"),
                f"http://127.0.0.1:{PORT}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        beside = wrk("get_user.lua", 64)
        sent, refused = _counts(signups.communicate()[0])
        # The 8 clients share one address: past its share of the hashing queue
        # (PASSWORD_HASH_QUEUE_PER_ADDRESS), sign-ups are refused at once (429).
        signed_up = (sent - refused) / (SECS + 4)
        rss = memory(pid)

    report(rows)
    if proxied:
        report_haproxy(proxied)
    if replicated:
        report_replica(replicated)
    print("\nCPU per request at 64 conns, one worker (capacity model):")
    for route, (load, app_us, postgres_us) in costs.items():
        print(
            f"  {route:<20} {load.rps:>6.0f} req/s  app {app_us:>4.0f} us  "
            f"PostgreSQL {postgres_us:>4.0f} us"
        )
    growth = beside.p99_ms / alone.p99_ms
    print(
        f"{USERS} at 64 conns beside 8 clients signing up ({signed_up:.1f}/s, "
        f"{refused / (SECS + 4):.0f}/s refused at once): "
        f"p99 {alone.p99_ms:.1f} -> {beside.p99_ms:.1f} ms (x{growth:.2f}), "
        f"req/s {alone.rps:.0f} -> {beside.rps:.0f}"
    )
    print(
        f"worker RSS under {MEMORY_SECS} s of GET load at 64 conns: max {rss[0]:.1f} MiB "
        f"in the first 20 s, {rss[1]:.1f} MiB in the last 20 s, {rss[2]:.1f} MiB at the end"
    )


if __name__ == "__main__":
    main()
