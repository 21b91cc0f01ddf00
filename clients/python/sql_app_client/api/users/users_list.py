from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...models.user_out import UserOut
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    after: int | None | Unset = UNSET,
    skip: int | Unset = 0,
    limit: int | Unset = 100,
    consistency_token: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(consistency_token, Unset):
        headers["consistency-token"] = consistency_token

    params: dict[str, Any] = {}

    json_after: int | None | Unset
    if isinstance(after, Unset):
        json_after = UNSET
    else:
        json_after = after
    params["after"] = json_after

    params["skip"] = skip

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/users/",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorMessage | HTTPValidationError | list[UserOut] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = UserOut.from_dict(response_200_item_data)

            response_200.append(response_200_item)

        return response_200

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
) -> Response[ErrorMessage | HTTPValidationError | list[UserOut]]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    after: int | None | Unset = UNSET,
    skip: int | Unset = 0,
    limit: int | Unset = 100,
    consistency_token: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | list[UserOut]]:
    """List Users

    Args:
        after (int | None | Unset): Only rows with a larger id (keyset).
        skip (int | Unset): Rows to skip (offset). Default: 0.
        limit (int | Unset): Rows to return, 1 to 100. Default: 100.
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | list[UserOut]]
    """

    kwargs = _get_kwargs(
        after=after,
        skip=skip,
        limit=limit,
        consistency_token=consistency_token,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    after: int | None | Unset = UNSET,
    skip: int | Unset = 0,
    limit: int | Unset = 100,
    consistency_token: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | list[UserOut] | None:
    """List Users

    Args:
        after (int | None | Unset): Only rows with a larger id (keyset).
        skip (int | Unset): Rows to skip (offset). Default: 0.
        limit (int | Unset): Rows to return, 1 to 100. Default: 100.
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | list[UserOut]
    """

    return sync_detailed(
        client=client,
        after=after,
        skip=skip,
        limit=limit,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    after: int | None | Unset = UNSET,
    skip: int | Unset = 0,
    limit: int | Unset = 100,
    consistency_token: None | str | Unset = UNSET,
) -> Response[ErrorMessage | HTTPValidationError | list[UserOut]]:
    """List Users

    Args:
        after (int | None | Unset): Only rows with a larger id (keyset).
        skip (int | Unset): Rows to skip (offset). Default: 0.
        limit (int | Unset): Rows to return, 1 to 100. Default: 100.
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | list[UserOut]]
    """

    kwargs = _get_kwargs(
        after=after,
        skip=skip,
        limit=limit,
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    after: int | None | Unset = UNSET,
    skip: int | Unset = 0,
    limit: int | Unset = 100,
    consistency_token: None | str | Unset = UNSET,
) -> ErrorMessage | HTTPValidationError | list[UserOut] | None:
    """List Users

    Args:
        after (int | None | Unset): Only rows with a larger id (keyset).
        skip (int | Unset): Rows to skip (offset). Default: 0.
        limit (int | Unset): Rows to return, 1 to 100. Default: 100.
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | list[UserOut]
    """

    return (
        await asyncio_detailed(
            client=client,
            after=after,
            skip=skip,
            limit=limit,
            consistency_token=consistency_token,
        )
    ).parsed
