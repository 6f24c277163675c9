"""What commands that talk to a running server share: `--url`/`--key` (or `TIERKIT_URL` and
`TIERKIT_KEY`), an HTTP client holding the key, and calls that exit with the server's error."""

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


def server_client(url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def call_server(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """The reply's JSON; on a transport error or an error reply, say why and exit 1."""
    try:
        response = client.request(method, path, json=json, params=params)
    except httpx.HTTPError as error:
        err.print(f"[red]error:[/red] cannot reach {client.base_url}: {error}")
        raise typer.Exit(1) from error
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        err.print(f"[red]error:[/red] {response.status_code}: {message}")
        raise typer.Exit(1)
    return response.json()
