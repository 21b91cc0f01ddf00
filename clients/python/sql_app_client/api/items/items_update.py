from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...models.item_out import ItemOut
from ...models.item_update import ItemUpdate
from ...types import UNSET, Response, Unset


def _get_kwargs(
    item_id: int,
    *,
    body: ItemUpdate,
    if_match: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_match, Unset):
        headers["if-match"] = if_match

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/items/{item_id}".format(
            item_id=quote(str(item_id), safe=""),
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

    if response.status_code == 412:
        response_412 = ErrorMessage.from_dict(response.json())

        return response_412

    if response.status_code == 413:
        response_413 = response.text
        return response_413

    if response.status_code == 422:
        response_422 = HTTPValidationError.from_dict(response.json())

        return response_422

    if response.status_code == 428:
        response_428 = ErrorMessage.from_dict(response.json())

        return response_428

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
    item_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemUpdate,
    if_match: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | ItemOut | str]:
    """Update Item

     Change the title and/or description: the owner's token, or a superuser's. With
    If-Match, only if the item is still at that ETag (412 otherwise).

    Args:
        item_id (int): An item's id.
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).
        body (ItemUpdate): Only the fields sent are changed; `description` may be set to null,
            `title` not.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | ItemOut | str]
    """

    kwargs = _get_kwargs(
        item_id=item_id,
        body=body,
        if_match=if_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    item_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemUpdate,
    if_match: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | ItemOut | str | None:
    """Update Item

     Change the title and/or description: the owner's token, or a superuser's. With
    If-Match, only if the item is still at that ETag (412 otherwise).

    Args:
        item_id (int): An item's id.
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).
        body (ItemUpdate): Only the fields sent are changed; `description` may be set to null,
            `title` not.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | ItemOut | str
    """

    return sync_detailed(
        item_id=item_id,
        client=client,
        body=body,
        if_match=if_match,
    ).parsed


async def asyncio_detailed(
    item_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemUpdate,
    if_match: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | ItemOut | str]:
    """Update Item

     Change the title and/or description: the owner's token, or a superuser's. With
    If-Match, only if the item is still at that ETag (412 otherwise).

    Args:
        item_id (int): An item's id.
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).
        body (ItemUpdate): Only the fields sent are changed; `description` may be set to null,
            `title` not.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | ItemOut | str]
    """

    kwargs = _get_kwargs(
        item_id=item_id,
        body=body,
        if_match=if_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    item_id: int,
    *,
    client: AuthenticatedClient,
    body: ItemUpdate,
    if_match: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | ItemOut | str | None:
    """Update Item

     Change the title and/or description: the owner's token, or a superuser's. With
    If-Match, only if the item is still at that ETag (412 otherwise).

    Args:
        item_id (int): An item's id.
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).
        body (ItemUpdate): Only the fields sent are changed; `description` may be set to null,
            `title` not.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | ItemOut | str
    """

    return (
        await asyncio_detailed(
            item_id=item_id,
            client=client,
            body=body,
            if_match=if_match,
        )
    ).parsed
