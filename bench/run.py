"""The project's benchmark (`make bench`). Prints figures; asserts nothing.

Builds a PostgreSQL database through the project's own migrations, fills it with
10k users and 50k items, serves the app the way production does (`python -m app`,
one process, ENVIRONMENT=production, ACCESS_LOG=false as in docker-compose.yml)
and drives it with wrk. When ../shared/bench is there, the seed's sync app and the
bare-asyncpg ceiling are served from the same data in the same run, rounds
interleaved, so every figure comes with its ratio.

Env: PG (postgresql://postgres@127.0.0.1:5432), SECS (8 per measurement),
ROUNDS (3; medians are printed), MEMORY_SECS (60), SHARED (../shared/bench).
"""

import asyncio
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = os.environ.get("PG", "postgresql://postgres@127.0.0.1:5432")
SECS = int(os.environ.get("SECS", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MEMORY_SECS = int(os.environ.get("MEMORY_SECS", "60"))
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared" / "bench"))
PORT = 8901
PASSWORD = "benchmark password"
FILL_USERS = """INSERT INTO users (email, hashed_password, is_active)
    SELECT 'u' || g || '@example.com', $1, true FROM generate_series(1, 10000) g"""
FILL_ITEMS = """INSERT INTO items (title, description, owner_id)
    SELECT 'item ' || g, 'desc ' || g, 1 + (g % 10000) FROM generate_series(1, 50000) g"""
BASELINES = {"seed": "seed_sync_app", "limit": "limit_app"}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float


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


def wrk(script: str, conns: int, secs: int = SECS, path: str = "", **env: str) -> Load:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{secs}s",
            "--latency",
            "-s",
            str(HERE / script),
            f"http://127.0.0.1:{PORT}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{errors.group(1)} error responses ({script}, {path}):\n{out}")
    return Load(
        float(_field(r"Requests/sec:\s+([\d.]+)", out)),
        _ms(_field(r"\s50%\s+(\S+)", out)),
        _ms(_field(r"\s99%\s+(\S+)", out)),
    )


def median(loads: list[Load]) -> Load:
    return Load(*(statistics.median(getattr(x, f) for x in loads) for f in Load.__annotations__))


def build(baselines: list[str]) -> None:
    """bench_app through the project's migrations; bench_seed through the seed's create_all."""
    asyncio.run(create_databases())
    env = {**os.environ, "DATABASE_URL": dsn("bench_app", "asyncpg")}
    migrate = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    if "seed" in baselines:  # the seed builds its own schema when imported
        env = {**os.environ, "DATABASE_URL": dsn("bench_seed", "psycopg2")}
        subprocess.run(
            [sys.executable, "-c", "import seed_sync_app"], cwd=SHARED, env=env, check=True
        )
    asyncio.run(fill("seed" in baselines))


async def create_databases() -> None:
    admin = await asyncpg.connect(dsn("postgres"))
    for name in ("bench_app", "bench_seed"):
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()


async def fill(seed: bool) -> None:
    from pwdlib import PasswordHash

    db = await asyncpg.connect(dsn("bench_app"))
    # Every user's password is PASSWORD; user 1 is a superuser (it writes for anyone).
    await db.execute(FILL_USERS, PasswordHash.recommended().hash(PASSWORD))
    await db.execute(FILL_ITEMS)
    await db.execute("UPDATE users SET is_superuser = true WHERE id = 1; ANALYZE")
    await db.close()
    if seed:
        db = await asyncpg.connect(dsn("bench_seed"))
        await db.execute(FILL_USERS, "x")
        await db.execute(FILL_ITEMS)
        await db.execute("CREATE INDEX ix_seed_items_owner ON items (owner_id); ANALYZE")
        await db.close()


async def forget_writes(databases: list[str]) -> None:
    """Drop the items a write benchmark added, so that every round reads the same data."""
    for database in databases:
        db = await asyncpg.connect(dsn(database))
        await db.execute("DELETE FROM items WHERE id > 50000")
        await db.execute("VACUUM ANALYZE items")  # dead rows would slow the next reads
        await db.close()


@contextmanager
def serving(app: str) -> Iterator[int]:
    if app == "project":
        command, cwd = [sys.executable, "-m", "app"], ROOT
        env = {
            "DATABASE_URL": dsn("bench_app", "asyncpg"),
            "HOST": "127.0.0.1",
            "PORT": str(PORT),
            "ENVIRONMENT": "production",
            "ACCESS_LOG": "false",
            "SECRET_KEY": secrets.token_urlsafe(48),
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
            str(PORT),
            f"{BASELINES[app]}:app",
        ]
        cwd = SHARED
        env = {"DATABASE_URL": dsn("bench_seed", "psycopg2"), "PG_DSN": dsn("bench_app")}
    # The server's stderr goes to a file, not a pipe: a full pipe would block it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/users/1", timeout=2).close()
                    break
                except (urllib.error.URLError, ConnectionError):
                    if process.poll() is not None:
                        log.seek(0)
                        raise SystemExit(f"{app} did not start:\n{log.read().decode()}") from None
                    time.sleep(0.1)
            wrk("get_user.lua", 64, secs=2)  # warm up: connections, prepared statements
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


def main() -> None:
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    baselines = [name for name, module in BASELINES.items() if (SHARED / f"{module}.py").exists()]
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"{machine}; baselines: {', '.join(baselines) or 'none'}; {ROUNDS} x {SECS} s", flush=True
    )
    build(baselines)

    # Every measurement on a freshly started server: a backlog one load left behind
    # (the seed's thread pool at 256 connections) must not slow the next.
    scenarios = [
        ("GET /users/{id}", 64, "get_user.lua"),
        ("GET /users/{id}", 256, "get_user.lua"),
        ("POST /users/{id}/items/", 64, "post_item.lua"),
    ]
    rows: dict[tuple[str, str, int], list[Load]] = {}
    for round_ in range(1, ROUNDS + 1):
        for endpoint, conns, script in scenarios:
            for app in [*baselines, "project"]:
                if script == "post_item.lua" and app == "limit":
                    continue  # the ceiling serves reads only
                with serving(app):
                    env = (
                        {"TOKEN": token()} if script == "post_item.lua" and app == "project" else {}
                    )
                    load = wrk(script, conns, **env)
                rows.setdefault((endpoint, app, conns), []).append(load)
                asyncio.run(forget_writes(["bench_seed" if app == "seed" else "bench_app"]))
        print(f"round {round_} done", flush=True)

    with serving("project") as pid:
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
        signed_up = float(_field(r"Requests/sec:\s+([\d.]+)", signups.communicate()[0]))
        pages = {
            "first page": "/items/?limit=100",
            "after=40000": "/items/?after=40000&limit=100",
            "skip=40000": "/items/?skip=40000&limit=100",
        }
        page_loads = {name: wrk("get_path.lua", 4, path=path) for name, path in pages.items()}
        rss = memory(pid)

    def ratio(value: float, base: float | None) -> str:
        return f"{value / base:.2f}" if base else ""

    print(
        f"\n{'endpoint':<24}{'app':<9}{'conns':>6}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'/seed':>7}{'/limit':>7}"
    )
    for (endpoint, app, conns), loads in rows.items():
        load = median(loads)
        seed = rows.get((endpoint, "seed", conns))
        limit = rows.get((endpoint, "limit", conns))
        vs_seed = ratio(load.rps, median(seed).rps if seed else None) if app == "project" else ""
        vs_limit = ratio(load.rps, median(limit).rps if limit else None) if app == "project" else ""
        print(
            f"{endpoint:<24}{app:<9}{conns:>6}{load.rps:>8.0f}{load.p50_ms:>8.1f}"
            f"{load.p99_ms:>8.1f}{vs_seed:>7}{vs_limit:>7}"
        )

    growth = beside.p99_ms / alone.p99_ms
    print(
        f"\nGET /users/{{id}} at 64 conns beside 8 clients signing up ({signed_up:.1f}/s): "
        f"p99 {alone.p99_ms:.1f} -> {beside.p99_ms:.1f} ms (x{growth:.2f}), "
        f"req/s {alone.rps:.0f} -> {beside.rps:.0f}"
    )
    first = page_loads["first page"]
    print("GET /items/ pages at 4 conns, p50 / p99 ms (p50 vs first page):")
    for name, load in page_loads.items():
        versus = load.p50_ms / first.p50_ms
        print(f"  {name:<12} {load.p50_ms:6.2f} / {load.p99_ms:6.2f}  x{versus:.2f}")
    print(
        f"worker RSS under {MEMORY_SECS} s of GET load at 64 conns: max {rss[0]:.1f} MiB "
        f"in the first 20 s, {rss[1]:.1f} MiB in the last 20 s, {rss[2]:.1f} MiB at the end"
    )


if __name__ == "__main__":
    main()
