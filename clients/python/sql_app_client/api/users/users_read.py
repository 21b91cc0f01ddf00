from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...models.user_out import UserOut
from ...types import UNSET, Response, Unset


def _get_kwargs(
    user_id: int,
    *,
    if_none_match: None | str | Unset = UNSET,
    consistency_token: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["if-none-match"] = if_none_match

    if not isinstance(consistency_token, Unset):
        headers["consistency-token"] = consistency_token

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/users/{user_id}".format(
            user_id=quote(str(user_id), safe=""),
        ),
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ErrorMessage | HTTPValidationError | UserOut | None:
    if response.status_code == 200:
        response_200 = UserOut.from_dict(response.json())

        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

    if response.status_code == 404:
        response_404 = ErrorMessage.from_dict(response.json())

        return response_404

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
) -> Response[Any | ErrorMessage | HTTPValidationError | UserOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient | Client,
    if_none_match: None | str | Unset = UNSET,
    consistency_token: None | str | Unset = UNSET,
) -> Response[Any | ErrorMessage | HTTPValidationError | UserOut]:
    """Read User

    Args:
        user_id (int): A user's id.
        if_none_match (None | str | Unset): ETags the client holds: 304 if one is current (ignored
            unless it is `*` or ETags in double quotes).
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorMessage | HTTPValidationError | UserOut]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    user_id: int,
    *,
    client: AuthenticatedClient | Client,
    if_none_match: None | str | Unset = UNSET,
    consistency_token: None | str | Unset = UNSET,
) -> Any | ErrorMessage | HTTPValidationError | UserOut | None:
    """Read User

    Args:
        user_id (int): A user's id.
        if_none_match (None | str | Unset): ETags the client holds: 304 if one is current (ignored
            unless it is `*` or ETags in double quotes).
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorMessage | HTTPValidationError | UserOut
    """

    return sync_detailed(
        user_id=user_id,
        client=client,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    ).parsed


async def asyncio_detailed(
    user_id: int,
    *,
    client: AuthenticatedClient | Client,
    if_none_match: None | str | Unset = UNSET,
    consistency_token: None | str | Unset = UNSET,
) -> Response[Any | ErrorMessage | HTTPValidationError | UserOut]:
    """Read User

    Args:
        user_id (int): A user's id.
        if_none_match (None | str | Unset): ETags the client holds: 304 if one is current (ignored
            unless it is `*` or ETags in double quotes).
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorMessage | HTTPValidationError | UserOut]
    """

    kwargs = _get_kwargs(
        user_id=user_id,
        if_none_match=if_none_match,
        consistency_token=consistency_token,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    user_id: int,
    *,
    client: AuthenticatedClient | Client,
    if_none_match: None | str | Unset = UNSET,
    consistency_token: None | str | Unset = UNSET,
) -> Any | ErrorMessage | HTTPValidationError | UserOut | None:
    """Read User

    Args:
        user_id (int): A user's id.
        if_none_match (None | str | Unset): ETags the client holds: 304 if one is current (ignored
            unless it is `*` or ETags in double quotes).
        consistency_token (None | str | Unset): The Consistency-Token of your last write's
            response: this read sees at least what that write left (without it, a replica may answer a
            little behind).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorMessage | HTTPValidationError | UserOut
    """

    return (
        await asyncio_detailed(
            user_id=user_id,
            client=client,
            if_none_match=if_none_match,
            consistency_token=consistency_token,
        )
    ).parsed
