"""`tierkit keys ...` and `tierkit environments ...`: open the database directly."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tierkit.cli.context import DEFAULT_URL, DatabaseUrl, open_services, out
from tierkit.server.services.api_keys import KeyKind

keys = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
environments = typer.Typer(help="List and create environments.", no_args_is_help=True)


@keys.command("create")
def create_key(
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="The environment the key opens.")
    ],
    kind: Annotated[
        KeyKind,
        typer.Option(help="secret: full access; publishable: checks and pricing, browser-safe."),
    ] = KeyKind.SECRET,
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create a key and print it alone on stdout (it is shown this once)."""
    with open_services(database_url) as services:
        _, secret = services.api_keys.create_key(environment, kind, name)
    out.print(secret)


@keys.command("list")
def list_keys(
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment's keys.")
    ] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """List keys (never the keys themselves: they are stored hashed).

    A table on a terminal; tab-separated lines, one key each, when piped.
    """
    table = Table("id", "environment", "kind", "name", "key", "created", "last used", "revoked")
    with open_services(database_url) as services:
        cursor: str | None = None
        while True:
            page = services.api_keys.list_keys(
                environment, include_revoked=include_revoked, cursor=cursor
            )
            for key in page.items:
                row = [
                    key.id,
                    key.environment,
                    key.kind,
                    key.name or "-",
                    key.hint,
                    f"{key.created_at:%Y-%m-%d %H:%M}",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
                    f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
                ]
                if out.is_terminal:
                    table.add_row(*row)
                else:
                    print("\t".join(row))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    if out.is_terminal:
        out.print(table)


@keys.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `tierkit keys list`).")],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with open_services(database_url) as services:
        key = services.api_keys.revoke_key(key_id)
    out.print(f"revoked {key.id} ({key.environment}, {key.kind}, {key.hint})")


@environments.command("list")
def list_environments(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """List environments."""
    with open_services(database_url) as services:
        for env in services.environments.list_environments():
            out.print(env.name)


@environments.command("create")
def create_environment(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits and _.:- (e.g. staging).")],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create an environment (its data is isolated from every other's)."""
    with open_services(database_url) as services:
        env = services.environments.create_environment(name)
    out.print(env.name)
