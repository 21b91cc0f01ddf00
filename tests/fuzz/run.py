"""The fuzz run: `make fuzz`, or `.venv/bin/python -m tests.fuzz.run` from the project's root.

1. creates a fresh PostgreSQL database (on FUZZ_DATABASE_URL's server, else
   TEST_DATABASE_URL's, else postgres@127.0.0.1:5432) and migrates it;
2. creates a superuser with `python -m app.cli create-superuser`;
3. serves the API as production does, `python -m app`, with cheap password hashing and
   log-in throttling limits the fuzzer cannot reach;
4. runs schemathesis' CLI on it with tests/fuzz/schemathesis.toml (fixed seed, one worker,
   no example database, no cache), within FUZZ_TIMEOUT seconds (default 170);
5. stops the server and drops the database, whatever happened.

It fails if schemathesis reports a failure or an error, runs out of time, or generated
fewer than MIN_CASES cases (read from its JSON report). Reports: fuzz-report/ (JUnit,
JSON) and the server's log, fuzz-report/server.log. Extra arguments go to schemathesis.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.databases import PROJECT_ROOT, PostgresServer, migrate, run_coroutine
from tests.servers import free_port

MIN_CASES = 1000
TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "170"))  # seconds, for schemathesis alone
SERVER_START_TIMEOUT = 60
CONFIG = PROJECT_ROOT / "tests" / "fuzz" / "schemathesis.toml"
REPORTS = PROJECT_ROOT / "fuzz-report"
SERVER_URL = (
    os.environ.get("FUZZ_DATABASE_URL")
    or os.environ.get("TEST_DATABASE_URL")
    or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
ADMIN_EMAIL = "fuzz-admin@example.com"


def server_environment(database_url: str) -> dict[str, str]:
    """The settings the API runs with during the fuzz run."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ACCESS_LOG": "true",  # fuzz-report/server.log: what the server saw, for a failure
        # One argon2id hash at the production cost takes a third of a second; the run
        # makes hundreds of sign-ups and log-ins.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_COST": "8",
        # Every request comes from 127.0.0.1 and most log-ins fail: the throttling
        # (tested on its own) would otherwise answer 429 to the run's own log-ins.
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000",
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    }


def wait_until_serving(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"fuzz: the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"fuzz: the server did not answer within {SERVER_START_TIMEOUT} s")


def run_schemathesis(base_url: str, env: dict[str, str], args: list[str]) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--report",
        "junit,json",
        "--report-junit-path",
        str(REPORTS / "junit.xml"),
        "--report-json-path",
        str(REPORTS / "run.json"),
        *args,
    ]
    try:
        return subprocess.run(  # noqa: S603 - fixed command line
            command, cwd=PROJECT_ROOT, env=env, timeout=TIMEOUT, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"fuzz: schemathesis did not finish within {TIMEOUT:.0f} s", file=sys.stderr)
        return 1


def counts() -> tuple[int, int]:
    """Cases generated, and cases that failed a check or met an error, from the JSON report."""
    if not (REPORTS / "run.json").exists():
        return 0, 0
    cases = json.loads((REPORTS / "run.json").read_text())["test_cases"]
    return int(cases["generated"]), int(cases["with_failures"]) + int(cases["errored"])


def fuzz(database_url: str, args: list[str]) -> int:
    env = server_environment(database_url)
    migrate(database_url)
    admin_password = secrets.token_urlsafe(16)
    subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-m", "app.cli", "create-superuser", ADMIN_EMAIL],
        cwd=PROJECT_ROOT,
        env=env,
        input=f"{admin_password}\n".encode(),
        check=True,
        timeout=120,
    )
    print("fuzz: database migrated, superuser created", flush=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (REPORTS / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=PROJECT_ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(base_url, server)
            print(f"fuzz: python -m app serving on {base_url}", flush=True)
            with tempfile.TemporaryDirectory(prefix="fuzz-hypothesis-") as hypothesis_dir:
                fuzz_env = {
                    **env,
                    "FUZZ_ADMIN_EMAIL": ADMIN_EMAIL,
                    "FUZZ_ADMIN_PASSWORD": admin_password,
                    # Hypothesis keeps a few files of its own even without an example
                    # database: in a directory of this run's own, gone afterwards.
                    "HYPOTHESIS_STORAGE_DIRECTORY": hypothesis_dir,
                }
                started = time.monotonic()
                returncode = run_schemathesis(base_url, fuzz_env, args)
                seconds = time.monotonic() - started
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    cases, _ = counts()
    print(f"fuzz: {cases} cases in {seconds:.0f} s (schemathesis exit code {returncode})")
    if cases < MIN_CASES:
        print(f"fuzz: fewer than {MIN_CASES} cases were generated", file=sys.stderr)
        return 1
    return returncode


def main() -> int:
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir()
    started = time.monotonic()
    server = PostgresServer(SERVER_URL)
    name = run_coroutine(lambda: server.create(prefix="app_fuzz"))
    try:
        returncode = fuzz(server.url_for(name), sys.argv[1:])
    finally:
        run_coroutine(server.drop_created)
        print(f"fuzz: {time.monotonic() - started:.0f} s in all (database, server, run)")
    cases, failed = counts()
    print(f"fuzz: {cases - failed} passed, {failed} failed")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
