from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    if_match: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_match, Unset):
        headers["if-match"] = if_match

    _kwargs: dict[str, Any] = {
        "method": "delete",
        "url": "/users/me",
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | ErrorMessage | HTTPValidationError | str | None:
    if response.status_code == 204:
        response_204 = cast(Any, None)
        return response_204

    if response.status_code == 400:
        response_400 = ErrorMessage.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorMessage.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = ErrorMessage.from_dict(response.json())

        return response_404

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
) -> Response[Any | ErrorMessage | HTTPValidationError | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    if_match: None | str | Unset = UNSET,
) -> Response[Any | ErrorMessage | HTTPValidationError | str]:
    """Delete Me

     Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise).

    Args:
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorMessage | HTTPValidationError | str]
    """

    kwargs = _get_kwargs(
        if_match=if_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    if_match: None | str | Unset = UNSET,
) -> Any | ErrorMessage | HTTPValidationError | str | None:
    """Delete Me

     Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise).

    Args:
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorMessage | HTTPValidationError | str
    """

    return sync_detailed(
        client=client,
        if_match=if_match,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    if_match: None | str | Unset = UNSET,
) -> Response[Any | ErrorMessage | HTTPValidationError | str]:
    """Delete Me

     Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise).

    Args:
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorMessage | HTTPValidationError | str]
    """

    kwargs = _get_kwargs(
        if_match=if_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    if_match: None | str | Unset = UNSET,
) -> Any | ErrorMessage | HTTPValidationError | str | None:
    """Delete Me

     Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise).

    Args:
        if_match (None | str | Unset): The ETag the change was based on: 412 if the resource
            changed since (400 unless it is `*` or ETags in double quotes).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorMessage | HTTPValidationError | str
    """

    return (
        await asyncio_detailed(
            client=client,
            if_match=if_match,
        )
    ).parsed
