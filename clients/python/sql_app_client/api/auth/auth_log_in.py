from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_message import ErrorMessage
from ...models.http_validation_error import HTTPValidationError
from ...models.login_form import LoginForm
from ...models.token import Token
from ...types import Response


def _get_kwargs(
    *,
    body: LoginForm,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/auth/token",
    }

    _kwargs["data"] = body.to_dict()
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorMessage | HTTPValidationError | Token | str | None:
    if response.status_code == 200:
        response_200 = Token.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorMessage.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorMessage.from_dict(response.json())

        return response_401

    if response.status_code == 413:
        response_413 = response.text
        return response_413

    if response.status_code == 422:
        response_422 = HTTPValidationError.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = ErrorMessage.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = ErrorMessage.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorMessage | HTTPValidationError | Token | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: LoginForm,
) -> Response[ErrorMessage | HTTPValidationError | Token | str]:
    """Log In

     OAuth2 password flow: `username` is the account's email. Returns a bearer token.
    Repeated failures for an account or from an address get 429 for a while.

    Args:
        body (LoginForm): OAuth2 password flow form (`application/x-www-form-urlencoded`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | Token | str]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: LoginForm,
) -> ErrorMessage | HTTPValidationError | Token | str | None:
    """Log In

     OAuth2 password flow: `username` is the account's email. Returns a bearer token.
    Repeated failures for an account or from an address get 429 for a while.

    Args:
        body (LoginForm): OAuth2 password flow form (`application/x-www-form-urlencoded`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | Token | str
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: LoginForm,
) -> Response[ErrorMessage | HTTPValidationError | Token | str]:
    """Log In

     OAuth2 password flow: `username` is the account's email. Returns a bearer token.
    Repeated failures for an account or from an address get 429 for a while.

    Args:
        body (LoginForm): OAuth2 password flow form (`application/x-www-form-urlencoded`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorMessage | HTTPValidationError | Token | str]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: LoginForm,
) -> ErrorMessage | HTTPValidationError | Token | str | None:
    """Log In

     OAuth2 password flow: `username` is the account's email. Returns a bearer token.
    Repeated failures for an account or from an address get 429 for a while.

    Args:
        body (LoginForm): OAuth2 password flow form (`application/x-www-form-urlencoded`).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorMessage | HTTPValidationError | Token | str
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
