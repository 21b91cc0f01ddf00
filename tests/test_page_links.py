"""List pages link to the next one (RFC 8288 `Link: <...>; rel="next"`), by keyset.

The body stays the tutorial's plain array; the link starts after the page's last id,
keeps the page's filters and `limit`, drops `skip`, and the last page has none, even
when it is full.
"""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from httpx import AsyncClient, Response

from tests.helpers import create_item, new_account


def next_link(response: Response) -> str | None:
    """The next page's URL, as a client reads it from the Link header (httpx's parser)."""
    assert response.status_code == 200, response.text
    link = response.links.get("next")
    return link["url"] if link else None


async def walk(client: AsyncClient, url: str) -> list[list[dict[str, Any]]]:
    """Every page from `url` on, following the links until a page has none."""
    pages = []
    following: str | None = url
    while following is not None:
        response = await client.get(following)
        assert isinstance(response.json(), list)  # the body is still a plain array
        pages.append(response.json())
        following = next_link(response)
        assert len(pages) <= 20, "the links go round in circles"
    return pages


async def test_item_pages_link_to_the_next_until_the_last(client: AsyncClient) -> None:
    owner = await new_account(client)
    items = [await create_item(client, owner, title=f"item {n}") for n in range(6)]

    # Six items, three to a page: the second page is full and still the last.
    pages = await walk(client, "/items/?limit=3")
    assert pages == [items[:3], items[3:]]
    first = await client.get("/items/", params={"limit": 3})
    assert next_link(first) == f"/items/?limit=3&after={items[2]['id']}"

    assert [len(page) for page in await walk(client, "/items/?limit=4")] == [4, 2]
    assert await walk(client, "/items/") == [items]  # one page of the default 100: no link
    no_more = await client.get("/items/", params={"after": items[-1]["id"]})
    assert no_more.json() == []
    assert next_link(no_more) is None


async def test_the_link_keeps_the_filters_and_the_limit_and_drops_skip(
    client: AsyncClient,
) -> None:
    alice, bob = await new_account(client), await new_account(client)
    lamps = []
    for n in range(5):
        lamps.append(await create_item(client, alice, title=f"lamp {n}"))
        await create_item(client, alice, title=f"rug {n}")  # filtered out by q
        await create_item(client, bob, title=f"lamp of bob {n}")  # by owner_id

    response = await client.get(
        "/items/", params={"owner_id": alice.id, "q": "LAMP", "skip": 1, "limit": 2}
    )
    assert response.json() == lamps[1:3]
    link = next_link(response)
    assert link is not None
    url = urlsplit(link)
    assert url.path == "/items/"
    assert parse_qs(url.query) == {
        "owner_id": [str(alice.id)],
        "q": ["LAMP"],
        "limit": ["2"],
        "after": [str(lamps[2]["id"])],
    }
    assert await walk(client, link) == [lamps[3:5]]


async def test_a_search_text_is_kept_as_sent(client: AsyncClient) -> None:
    owner = await new_account(client)
    odd = "50% & more; <b>=?"
    items = [await create_item(client, owner, title=f"{odd} {n}") for n in range(3)]
    await create_item(client, owner, title="50 and more")
    pages = await walk(client, f"/items/?limit=2&q={odd.replace('%', '%25').replace('&', '%26')}")
    assert pages == [items[:2], items[2:]]


async def test_user_pages_link_to_the_next_until_the_last(client: AsyncClient) -> None:
    accounts = [await new_account(client) for _ in range(4)]
    for account in accounts:
        await create_item(client, account)
    users = (await client.get("/users/")).json()
    assert [user["id"] for user in users] == [account.id for account in accounts]

    pages = await walk(client, "/users/?limit=2")
    assert pages == [users[:2], users[2:]]  # each user with their items, as before
    response = await client.get("/users/", params={"limit": 2, "skip": 1})
    assert next_link(response) == f"/users/?limit=2&after={users[2]['id']}"
    assert await walk(client, "/users/?limit=2&skip=1") == [users[1:3], users[3:]]
