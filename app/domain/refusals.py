"""Why a write was refused. Writes of items carry the policy's check in their one
statement (app.domain.policy), so that check and write are atomic; when such a
statement matches nothing, what it found is read afterwards, in the same unit of
work, and judged in the policy's order: who asks, what exists, whose it is, which
version. If the write would be allowed after all, the data changed between the two:
409."""

from app.domain import policy
from app.domain.repositories.common import S
from app.domain.repositories.items import ItemRepository
from app.domain.repositories.users import UserRepository
from app.domain.schemas import item_etag
from app.domain.security import Bearer
from app.platform.errors import Conflict, DomainError, ItemNotFound, PreconditionFailed


async def why_not_created(session: S, bearer: Bearer, owner_id: int) -> DomainError:
    """An item for `owner_id` was not created."""
    caller = await UserRepository(session).principal(bearer.user_id)
    return policy.refusal(caller, bearer, owner_id) or Conflict()


async def why_unchanged(
    session: S, bearer: Bearer, item_id: int, versions: list[int] | None
) -> DomainError:
    """The item was not changed (or deleted), if it was at one of `versions` (None: at
    any)."""
    caller = await UserRepository(session).principal(bearer.user_id)
    failure = policy.authentication_failure(caller, bearer)
    if failure is not None:
        return failure
    item = await ItemRepository(session).view(item_id)
    if item is None:
        return ItemNotFound()
    refused = policy.refusal(caller, bearer, item["owner_id"])
    if refused is not None:
        return refused
    if versions is not None and item["version"] not in versions:
        return PreconditionFailed(item_etag(item))
    return Conflict()
