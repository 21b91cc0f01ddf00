"""A PostgreSQL primary with a streaming replica of its own, on loopback ports of the
test run's own: `initdb`, `pg_basebackup -R`, `pg_ctl`, run as the `postgres` user (the
server refuses to run as root). Never the shared server on 5432.

    with replicated_cluster(tmp) as cluster:
        cluster.primary_url("app")        # SQLAlchemy URLs
        cluster.replica_url("app")
        cluster.pause_replay()            # the replica stops applying WAL (reads go stale)
        cluster.resume_replay()
        cluster.stop_replica(); cluster.start_replica()
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def available() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {BIN} (POSTGRES_BIN)"
    if os.geteuid() != 0:
        return "making a private PostgreSQL cluster needs root (it runs as the postgres user)"
    return None


RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def _as_postgres(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed commands
        [RUNUSER, "-u", "postgres", "--", *command],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@dataclass
class Cluster:
    root: Path
    primary_port: int
    replica_port: int

    @property
    def primary_dir(self) -> Path:
        return self.root / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.root / "replica"

    def primary_url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.primary_port}/{database}"

    def replica_url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.replica_port}/{database}"

    def as_postgres(self, *command: str) -> None:
        _as_postgres(*command)

    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        result = _as_postgres(
            str(BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            database,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        )
        return result.stdout.strip()

    def pause_replay(self) -> None:
        self.psql(self.replica_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.psql(self.replica_port, "SELECT pg_wal_replay_resume()")

    def caught_up(self) -> bool:
        primary = self.psql(self.primary_port, "SELECT pg_current_wal_lsn()")
        replayed = self.psql(
            self.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{primary}'::pg_lsn"
        )
        return replayed == "t"

    def wait_caught_up(self, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not self.caught_up():
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)

    def _ctl(self, directory: Path, action: str, *options: str) -> None:
        _as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(directory),
            "-l",
            str(directory / "server.log"),
            "-w",
            "-t",
            str(START_TIMEOUT),
            *options,
            action,
        )

    def pgbench(self, database: str, *options: str) -> "subprocess.Popen[bytes]":
        """pgbench against the primary's `database`, in the background."""
        return subprocess.Popen(  # noqa: S603 - fixed commands
            [
                RUNUSER,
                "-u",
                "postgres",
                "--",
                str(BIN / "pgbench"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary_port),
                *options,
                database,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_replica(self) -> None:
        self._ctl(self.replica_dir, "stop", "-m", "fast")

    def start_replica(self) -> None:
        self._ctl(self.replica_dir, "start")

    def stop(self) -> None:
        for directory in (self.replica_dir, self.primary_dir):
            if (directory / "postmaster.pid").exists():
                _as_postgres(
                    str(BIN / "pg_ctl"),
                    "-D",
                    str(directory),
                    "-m",
                    "immediate",
                    "stop",
                    check=False,
                )


SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
max_connections = 200
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
synchronous_commit = on
full_page_writes = off
"""


@contextlib.contextmanager
def replicated_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="app-replication-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user works in it
    shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, _free_port(), _free_port())
    try:
        _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(cluster.primary_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )
        with (cluster.primary_dir / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(port=cluster.primary_port, sockets=root))
        with (cluster.primary_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        cluster._ctl(cluster.primary_dir, "start")
        _as_postgres(
            str(BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.primary_port),
            "-U",
            "postgres",
            "-D",
            str(cluster.replica_dir),
            "-R",
            "-X",
            "stream",
            "--no-sync",
        )
        with (cluster.replica_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {cluster.replica_port}\n")
        cluster.start_replica()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
