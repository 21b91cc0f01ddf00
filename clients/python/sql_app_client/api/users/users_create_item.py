from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...models.item_create import ItemCreate
from ...models.item_out import ItemOut
from ...types import UNSET, Response, Unset


def _get_kwargs(
    user_id: int,
    *,
    body: ItemCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["idempotency-key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/users/{user_id}/items/".format(
            user_id=quote(str(user_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorMessage | HTTPValidationError | ItemOut | str | None:
    if response.status_code == 200:
        response_200 = ItemOut.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorMessage.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorMessage.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorMessage.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorMessage.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = ErrorMessage.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = response.text
        return response_413

    if response.status_code == 422:
        response_422 = HTTPValidationError.from_dict(response.json())

        return response_422

    if response.status_code == 503:
        response_503 = ErrorMessage.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorMessage | HTTPValidationError | ItemOut | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | ItemOut | str]:
    """Create Item For User

     Create an item owned by `user_id`: that user's token, or a superuser's.

    Args:
        user_id (int): A user's id.
        idempotency_key (None | str | Unset): Makes retries safe: a retry with the same key and
            request replays the first response (`Idempotent-Replayed: true`) and creates nothing.
        body (ItemCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | ItemOut | str]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    user_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | ItemOut | str | None:
    """Create Item For User

     Create an item owned by `user_id`: that user's token, or a superuser's.

    Args:
        user_id (int): A user's id.
        idempotency_key (None | str | Unset): Makes retries safe: a retry with the same key and
            request replays the first response (`Idempotent-Replayed: true`) and creates nothing.
        body (ItemCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | ItemOut | str
    """

    return sync_detailed(
        user_id=user_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | ItemOut | str]:
    """Create Item For User

     Create an item owned by `user_id`: that user's token, or a superuser's.

    Args:
        user_id (int): A user's id.
        idempotency_key (None | str | Unset): Makes retries safe: a retry with the same key and
            request replays the first response (`Idempotent-Replayed: true`) and creates nothing.
        body (ItemCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | ItemOut | str]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    user_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | ItemOut | str | None:
    """Create Item For User

     Create an item owned by `user_id`: that user's token, or a superuser's.

    Args:
        user_id (int): A user's id.
        idempotency_key (None | str | Unset): Makes retries safe: a retry with the same key and
            request replays the first response (`Idempotent-Replayed: true`) and creates nothing.
        body (ItemCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | ItemOut | str
    """

    return (
        await asyncio_detailed(
            user_id=user_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
