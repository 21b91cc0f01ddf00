"""The generated Python client (clients/python): what the generator makes of the app's
OpenAPI document today, and a live `app serve` driven through it, as its users will."""

import asyncio
import difflib
import os
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from sql_app_client import AuthenticatedClient, Client
from sql_app_client.api.auth import auth_log_in
from sql_app_client.api.items import items_create, items_list, items_update
from sql_app_client.api.users import users_create, users_read_me
from sql_app_client.models import (
    ErrorMessage,
    ItemCreate,
    ItemOut,
    ItemUpdate,
    LoginForm,
    Token,
    UserCreate,
    UserOut,
)

from tests.clients import PYTHON_CLIENT, files, generate
from tests.databases import PROJECT_ROOT, Database
from tests.helpers import PASSWORD, unique_email
from tests.servers import production_env, serving

TIMEOUT = httpx.Timeout(30)  # a busy machine may take seconds to answer


def test_the_committed_client_is_what_the_generator_makes_of_the_api(tmp_path: Path) -> None:
    generate(tmp_path / "python")
    generated, committed = files(tmp_path / "python"), files(PYTHON_CLIENT)
    assert "sql_app_client/api/items/items_update.py" in generated
    stale = sorted(
        path
        for path in generated.keys() | committed.keys()
        if generated.get(path) != committed.get(path)
    )
    diffs = (
        difflib.unified_diff(
            committed.get(path, b"").decode().splitlines(keepends=True),
            generated.get(path, b"").decode().splitlines(keepends=True),
            f"committed/{path}",
            f"generated/{path}",
        )
        for path in stale
    )
    assert not stale, "clients/python is stale: run `make client`\n" + "".join(
        line for diff in diffs for line in diff
    )


def _environment(database: Database) -> dict[str, str]:
    pgbouncer = {"DB_PGBOUNCER": "true"} if database.backend == "pgbouncer" else {}
    return production_env(database.url, ACCESS_LOG="false", **pgbouncer)


async def _new_account(url: str, email: str) -> AuthenticatedClient:
    async with Client(base_url=url, timeout=TIMEOUT) as anonymous:
        signed_up = await users_create.asyncio_detailed(
            client=anonymous, body=UserCreate(email=email, password=PASSWORD)
        )
        assert isinstance(signed_up.parsed, UserOut), signed_up.content
        assert signed_up.parsed.email == email
        token = await auth_log_in.asyncio(
            client=anonymous, body=LoginForm(username=email, password=PASSWORD)
        )
    assert isinstance(token, Token), token
    return AuthenticatedClient(base_url=url, token=token.access_token, timeout=TIMEOUT)


async def test_the_client_signs_up_retries_safely_changes_with_if_match_and_pages(
    database: Database, tmp_path: Path
) -> None:
    email = unique_email()
    with serving(_environment(database), tmp_path) as server:
        async with await _new_account(server.url, email) as api:
            me = await users_read_me.asyncio(client=api)
            assert isinstance(me, UserOut)
            assert me.email == email

            # A POST sent twice with one Idempotency-Key: one item, the second answer
            # the first one replayed.
            new = ItemCreate(title="Lamp", description="brass")
            first = await items_create.asyncio_detailed(
                client=api, body=new, idempotency_key="lamp-1"
            )
            again = await items_create.asyncio_detailed(
                client=api, body=new, idempotency_key="lamp-1"
            )
            item = first.parsed
            assert isinstance(item, ItemOut), first.content
            assert (item.title, item.description, item.owner_id) == ("Lamp", "brass", me.id)
            assert "Idempotent-Replayed" not in first.headers
            assert again.status_code == 200
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.parsed == item
            assert again.headers["ETag"] == first.headers["ETag"] == f'"{item.version}"'

            # A change based on the ETag read succeeds; the same ETag again is stale.
            etag = first.headers["ETag"]
            changed = await items_update.asyncio_detailed(
                item.id, client=api, body=ItemUpdate(title="Desk lamp"), if_match=etag
            )
            assert isinstance(changed.parsed, ItemOut), changed.content
            assert changed.parsed.title == "Desk lamp"
            assert changed.parsed.description == "brass"
            assert changed.headers["ETag"] not in ("", etag)
            stale = await items_update.asyncio_detailed(
                item.id, client=api, body=ItemUpdate(title="Floor lamp"), if_match=etag
            )
            assert stale.status_code == 412
            assert isinstance(stale.parsed, ErrorMessage)

            # Pages of two, each named by the Link of the one before, until one has none.
            created = [item.id]
            for number in range(4):
                more = await items_create.asyncio(
                    client=api, body=ItemCreate(title=f"Item {number}")
                )
                assert isinstance(more, ItemOut), more
                created.append(more.id)
            seen: list[ItemOut] = []
            pages = 0
            after: int | None = None
            while True:
                page = await items_list.asyncio_detailed(
                    client=api, owner_id=me.id, after=after, limit=2
                )
                assert isinstance(page.parsed, list), page.content
                pages += 1
                seen += page.parsed
                if "Link" not in page.headers:
                    break
                link = re.fullmatch(r'<([^>]+)>; rel="next"', page.headers["Link"])
                assert link, page.headers["Link"]
                query = parse_qs(urlsplit(link.group(1)).query)
                assert query["owner_id"] == [str(me.id)]
                after = int(query["after"][0])
            assert [i.id for i in seen] == created
            assert pages == 3  # 2, 2 and 1: the short page is the last
            assert seen[0].title == "Desk lamp"
    assert await database.column("SELECT count(*) FROM items") == [5]


def _readme_client_example() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### A typed async client", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's client section has no Python example"
    return found.group(1)


async def test_the_readmes_client_example_runs(database: Database, tmp_path: Path) -> None:
    code = _readme_client_example()
    default_url = 'BASE_URL = "http://127.0.0.1:8000"\n'
    assert default_url in code
    with serving(_environment(database), tmp_path) as server:
        code = code.replace(default_url, f'BASE_URL = "{server.url}"\n')
        example = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            env={**os.environ, "PYTHONPATH": str(PYTHON_CLIENT)},  # as if installed
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            stdout, stderr = await example.communicate()
    assert example.returncode == 0, stderr.decode()
    [item_id] = await database.column("SELECT id FROM items")  # one item, though posted twice
    assert stdout.decode().splitlines() == [f"{item_id} true True", '200 "2"', "412"], stdout
    assert await database.column("SELECT description FROM items") == ["brass"]
