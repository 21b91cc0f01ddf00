"""Reads from a real streaming replica: a client never reads older than its own writes, from
any app process; others read stale within the bound; a replica that is stopped, cut off
or silent costs no error; through PgBouncer too.

A primary and its replica of the test run's own (tests/replication.py), never the shared
server. Two apps stand for two app processes: they share nothing but the databases and
SECRET_KEY, as the processes of a deployment do.
"""

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import AsyncClient, Response
from sql_app_client import AuthenticatedClient
from sql_app_client.api.items import items_read, items_update
from sql_app_client.models import ItemOut, ItemUpdate

from app.main import create_app
from tests.databases import make_settings, migrate, serve
from tests.helpers import Account, create_item, new_account
from tests.replication import Cluster, available, replicated_cluster
from tests.servers import free_port, wait_for_port
from tests.tcp_proxy import TcpProxy

CHECK_INTERVAL = 0.1  # REPLICA_CHECK_INTERVAL in these tests: the replicas' state moves fast
MAX_STALENESS = 1.0  # REPLICA_MAX_STALENESS in these tests


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    why_not = available()
    if why_not is not None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the replica tests must run in CI: {why_not}")
        pytest.skip(why_not)
    with replicated_cluster() as made:
        template = "app_template"
        made.psql(made.primary_port, f"CREATE DATABASE {template}")
        migrate(made.primary_url(template))
        yield made


@pytest.fixture
def database(cluster: Cluster) -> str:
    """A migrated database of the test's own, on the primary and (once replayed) the replica."""
    name = f"app_{os.urandom(4).hex()}"
    cluster.psql(cluster.primary_port, f"CREATE DATABASE {name} TEMPLATE app_template")
    cluster.wait_caught_up()
    return name


def _settings(primary: str, *replicas: str, **overrides: Any) -> Any:
    return make_settings(
        primary,
        database_replica_url=list(replicas),
        replica_check_interval=CHECK_INTERVAL,
        replica_max_staleness=MAX_STALENESS,
        **overrides,
    )


@asynccontextmanager
async def _apps(primary: str, *replicas: str, **overrides: Any) -> AsyncIterator[list[AsyncClient]]:
    """Two app processes' clients, both reading from `replicas`, once both see them in."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                serve(create_app(_settings(primary, *replicas, **overrides)))
            )
            for _ in range(2)
        ]
        for client in clients:
            await _until(
                client, lambda replica: replica["up"] and replica["staleness_seconds"] is not None
            )
        yield clients


async def _replicas(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text  # a replica never makes it unready
    replicas: dict[str, Any] = response.json()["replicas"]
    return replicas


async def _until(client: AsyncClient, holds: Any, within: float = 30) -> None:
    """Until every replica the app knows satisfies `holds`."""
    deadline = time.monotonic() + within
    while not all(holds(replica) for replica in (await _replicas(client)).values()):
        assert time.monotonic() < deadline, await _replicas(client)
        await asyncio.sleep(CHECK_INTERVAL)


def _reads(metrics: str) -> dict[tuple[str, str], float]:
    """db_reads_total by (target, reason)."""
    found = {}
    for target, reason, value in re.findall(
        r'db_reads_total\{reason="([^"]*)",target="([^"]*)"\} (\S+)', metrics
    ):
        found[(reason, target)] = float(value)
    return found


async def _served_by_replica(client: AsyncClient) -> float:
    reads = _reads((await client.get("/metrics")).text)
    return sum(count for (target, _), count in reads.items() if target != "primary")


async def _item(client: AsyncClient, item_id: int, token: str | None = None) -> Response:
    headers = {"Consistency-Token": token} if token else {}
    response = await client.get(f"/items/{item_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response


async def _change(client: AsyncClient, owner: Account, item_id: int, title: str) -> str:
    response = await client.patch(f"/items/{item_id}", json={"title": title}, headers=owner.headers)
    assert response.status_code == 200, response.text
    token: str = response.headers["consistency-token"]
    return token


async def test_the_writer_reads_its_write_through_another_process_while_the_replica_lags(
    cluster: Cluster, database: str
) -> None:
    async with _apps(cluster.primary_url(database), cluster.replica_url(database)) as (a, b):
        owner = await new_account(a)
        item = await create_item(a, owner, "before")
        cluster.wait_caught_up()
        cluster.pause_replay()
        try:
            token = await _change(a, owner, item["id"], "after")
            # The token: read through the other process, the write is there.
            assert (await _item(b, item["id"], token)).json()["title"] == "after"
            # No token, within the bound: the replica answers, and it is behind (proof
            # that the replica serves reads, and that the test could fail).
            assert (await _item(b, item["id"])).json()["title"] == "before"
            # Reads of a user, batched: the same.
            user = await b.get(f"/users/{owner.id}", headers={"Consistency-Token": token})
            assert user.json()["items"][0]["title"] == "after"
        finally:
            cluster.resume_replay()
        cluster.wait_caught_up()
        # Caught up (once the process has seen it), the replica answers the token's reads
        # too.
        before = await _served_by_replica(b)
        deadline = time.monotonic() + 30
        while await _served_by_replica(b) == before:
            assert time.monotonic() < deadline, "the replica never answered the token's reads"
            assert (await _item(b, item["id"], token)).json()["title"] == "after"
            await asyncio.sleep(CHECK_INTERVAL)


@pytest.fixture
def pgbench_load(cluster: Cluster, database: str) -> Iterator[None]:
    """pgbench's updates on the primary, four clients, while the test runs."""
    assert cluster.pgbench(database, "-i", "-s", "1", "-q").wait(timeout=120) == 0
    load = cluster.pgbench(database, "-c", "4", "-T", "600", "-n", "-b", "simple-update")
    try:
        yield
    finally:
        load.terminate()
        load.wait()


async def test_write_then_read_pairs_under_load_never_read_stale(
    cluster: Cluster, database: str, pgbench_load: None
) -> None:
    async with _apps(cluster.primary_url(database), cluster.replica_url(database)) as (a, b):
        owner = await new_account(a)
        item = await create_item(a, owner, "0")
        for n in range(1, 301):
            token = await _change(a, owner, item["id"], str(n))
            assert (await _item(b, item["id"], token)).json()["title"] == str(n), n
            if n % 20 == 0:
                # Right after the write, the process has not yet seen the replica replay
                # it (it looks every CHECK_INTERVAL): the primary answered. Read on until
                # the replica may answer too, on a busy machine within seconds.
                before, deadline = await _served_by_replica(b), time.monotonic() + 5
                while await _served_by_replica(b) == before and time.monotonic() < deadline:
                    await asyncio.sleep(CHECK_INTERVAL)
                    assert (await _item(b, item["id"], token)).json()["title"] == str(n), n
        served = await _served_by_replica(b)
    assert served > 0  # the replica served some of them, caught up


async def test_without_a_token_reads_are_stale_within_the_bound_then_go_to_the_primary(
    cluster: Cluster, database: str
) -> None:
    async with _apps(cluster.primary_url(database), cluster.replica_url(database)) as (a, b):
        owner = await new_account(a)
        item = await create_item(a, owner, "0")
        cluster.wait_caught_up()
        await _until(b, lambda replica: replica["staleness_seconds"] < MAX_STALENESS)
        cluster.pause_replay()
        try:
            written = 0
            start = time.monotonic()
            # The primary keeps writing while the replica stands still: past the bound,
            # token-less reads are the primary's.
            while time.monotonic() - start < 2 * MAX_STALENESS:
                written += 1
                await _change(a, owner, item["id"], str(written))
                await asyncio.sleep(0.05)
            await _until(b, lambda replica: (replica["staleness_seconds"] or 99) > MAX_STALENESS)
            assert (await _item(b, item["id"])).json()["title"] == str(written)
            reads = _reads((await b.get("/metrics")).text)
            assert reads.get(("primary", "stale"), 0) > 0, reads
        finally:
            cluster.resume_replay()


async def _reads_succeed(client: AsyncClient, item_id: int, owner: Account) -> float:
    """A round of every read a replica may serve: all 200; the slowest's seconds."""
    slowest = 0.0
    for url in (f"/items/{item_id}", "/items/", f"/users/{owner.id}", "/users/"):
        start = time.monotonic()
        response = await client.get(url)
        assert response.status_code == 200, (url, response.text)
        slowest = max(slowest, time.monotonic() - start)
    return slowest


async def test_a_replica_stopped_cut_or_silent_costs_no_error_and_comes_back(
    cluster: Cluster, database: str
) -> None:
    proxy = TcpProxy("127.0.0.1", cluster.replica_port)
    await proxy.start()
    through_proxy = cluster.replica_url(database).replace(
        f":{cluster.replica_port}/", f":{proxy.port}/"
    )
    try:
        async with _apps(cluster.primary_url(database), through_proxy) as (a, b):
            owner = await new_account(a)
            item = await create_item(a, owner)
            cluster.wait_caught_up()
            await _until(b, lambda replica: replica["staleness_seconds"] < MAX_STALENESS)
            assert await _served_by_replica(b) >= 0

            async def fault(name: str, start: Any, end: Any) -> None:
                await start()
                # The first reads may meet the fault; none fails, none waits past the
                # README's bound for an outage.
                slowest = await _reads_succeed(b, item["id"], owner)
                assert slowest < 8, (name, slowest)
                await _until(b, lambda replica: not replica["up"])
                assert await _reads_succeed(b, item["id"], owner) < 1, name  # out: the primary's
                await end()
                await _until(b, lambda replica: replica["up"])
                before = await _served_by_replica(b)
                await _reads_succeed(b, item["id"], owner)
                assert await _served_by_replica(b) > before, name  # back in

            async def cut() -> None:
                await proxy.cut()

            async def blackhole() -> None:
                proxy.blackhole()

            async def stop() -> None:
                await asyncio.to_thread(cluster.stop_replica)

            async def start() -> None:
                await asyncio.to_thread(cluster.start_replica)

            await fault("cut", cut, proxy.restore)
            await fault("blackholed", blackhole, proxy.restore)
            await fault("stopped", stop, start)
            assert (await a.get("/health/ready")).status_code == 200
    finally:
        await proxy.close()


PGBOUNCER_INI = """
[databases]
{database} = host=127.0.0.1 port={primary} dbname={database}
{database}_ro = host=127.0.0.1 port={replica} dbname={database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
pool_mode = transaction
default_pool_size = 4
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
"""


@pytest.fixture
def pgbouncer(cluster: Cluster, database: str) -> Iterator[int]:
    """Debian's PgBouncer in transaction mode in front of the primary (`database`) and the
    replica (`database`_ro), as postgres; its port."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        missing = "pgbouncer is missing: make pgbouncer (or apt-get install -y pgbouncer)"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    root = cluster.root / f"pgbouncer-{database}"
    root.mkdir()
    port = free_port()
    (root / "pgbouncer.ini").write_text(
        PGBOUNCER_INI.format(
            database=database,
            primary=cluster.primary_port,
            replica=cluster.replica_port,
            port=port,
            root=root,
        )
    )
    (root / "userlist.txt").write_text('"postgres" ""\n')
    shutil.chown(root, "postgres", "postgres")
    for path in root.iterdir():
        shutil.chown(path, "postgres", "postgres")
    cluster.as_postgres(binary, "-d", str(root / "pgbouncer.ini"))
    try:
        wait_for_port(port)
        yield port
    finally:
        pid = (root / "pgbouncer.pid").read_text().strip()
        os.kill(int(pid), signal.SIGTERM)


async def test_through_pgbouncer_a_read_only_entry_serves_the_replicas_reads(
    cluster: Cluster, database: str, pgbouncer: int
) -> None:
    primary = f"postgresql+asyncpg://postgres@127.0.0.1:{pgbouncer}/{database}"
    replica = f"postgresql+asyncpg://postgres@127.0.0.1:{pgbouncer}/{database}_ro"
    async with _apps(primary, replica, db_pgbouncer=True) as (a, b):
        owner = await new_account(a)
        item = await create_item(a, owner, "before")
        cluster.wait_caught_up()
        await _until(b, lambda replica: replica["staleness_seconds"] < MAX_STALENESS)
        cluster.pause_replay()
        try:
            token = await _change(a, owner, item["id"], "after")
            assert (await _item(b, item["id"], token)).json()["title"] == "after"
            assert (await _item(b, item["id"])).json()["title"] == "before"  # the replica's
        finally:
            cluster.resume_replay()


class _Balanced(httpx.AsyncBaseTransport):
    """Each request to the next app process in turn, as a load balancer would send them."""

    def __init__(self, *clients: AsyncClient) -> None:
        self._transports = [client._transport for client in clients]
        self._turn = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._turn += 1
        return await self._transports[self._turn % len(self._transports)].handle_async_request(
            request
        )


async def test_the_generated_client_sends_its_last_token_back_by_itself(
    cluster: Cluster, database: str
) -> None:
    async with _apps(cluster.primary_url(database), cluster.replica_url(database)) as (a, b):
        owner = await new_account(a)
        item = await create_item(a, owner, "before")
        cluster.wait_caught_up()
        await _until(b, lambda replica: replica["staleness_seconds"] < MAX_STALENESS)
        cluster.pause_replay()
        try:
            token = owner.headers["Authorization"].removeprefix("Bearer ")
            transport = _Balanced(a, b)
            async with AuthenticatedClient(
                base_url="http://test", token=token, httpx_args={"transport": transport}
            ) as api:
                for n in range(4):  # writes and reads land on either process
                    changed = await items_update.asyncio_detailed(
                        item["id"], client=api, body=ItemUpdate(title=f"after {n}")
                    )
                    assert changed.status_code == 200
                    assert api.consistency_token == changed.headers["Consistency-Token"]
                    read = await items_read.asyncio(item["id"], client=api)
                    assert isinstance(read, ItemOut)
                    assert read.title == f"after {n}"
            # Without the token, the replica's answer is older: it was what the token beat.
            assert (await _item(b, item["id"])).json()["title"] == "before"
        finally:
            cluster.resume_replay()
