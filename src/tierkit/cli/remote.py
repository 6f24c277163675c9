"""What commands that talk to a running server share: `--url`/`--key` and one way to call."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from tierkit.cli.context import err

ServerUrl = Annotated[
    str,
    typer.Option("--url", envvar="TIERKIT_URL", help="The server's base URL."),
]
ApiKey = Annotated[
    str,
    typer.Option("--key", envvar="TIERKIT_KEY", help="A secret API key of the environment."),
]


def server_client(url: str, key: str, timeout: float = 10) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout
    )


class ServerError(Exception):
    """The server answered with an error envelope."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error


def request(client: httpx.Client, method: str, path: str, *, json: Any = None) -> Any:
    """The reply's JSON; `ServerError` on an error reply; exits 1 when the server is out of
    reach."""
    try:
        response = client.request(method, path, json=json)
    except httpx.HTTPError as error:
        err.print(f"[red]error:[/red] cannot reach {client.base_url}: {error}")
        raise typer.Exit(1) from error
    if response.status_code >= 400:
        try:
            body = response.json()["error"]
            if not isinstance(body, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            body = {"message": response.text[:200] or response.reason_phrase}
        raise ServerError(response.status_code, body)
    return response.json()


def call(client: httpx.Client, method: str, path: str, *, json: Any = None) -> Any:
    """`request`, printing an error reply's message and exiting 1."""
    try:
        return request(client, method, path, json=json)
    except ServerError as error:
        err.print(f"[red]error:[/red] {error.status}: {error.error.get('message')}")
        raise typer.Exit(1) from error
