"""`tierkit users ...`: the people who sign in to the admin console (/console)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tierkit.cli.context import DEFAULT_URL, DatabaseUrl, err, open_services, out

users = typer.Typer(
    help="Create and list console users (who sign in at /console).", no_args_is_help=True
)


def _password(password: str | None, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        return password
    entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return entered


@users.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The address the user signs in with.")],
    password: Annotated[
        str | None,
        typer.Option(help="Prompted for (with confirmation) when omitted; at least 12 characters."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create a console user who may change everything in every environment."""
    secret = _password(password, password_stdin)
    with open_services(database_url) as services:
        user = services.console_users.create_user(email, secret)
    err.print(f"created console user {user.email}; sign in at /console")
    out.print(user.email)


@users.command("set-password")
def set_password(
    email: Annotated[str, typer.Option(help="The console user's address.")],
    password: Annotated[str | None, typer.Option(help="Prompted for when omitted.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Give a console user a new password (their open sessions end)."""
    secret = _password(password, password_stdin)
    with open_services(database_url) as services:
        user = services.console_users.set_password(email, secret)
    err.print(f"new password set for {user.email}; their sessions have ended")


@users.command("list")
def list_users(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """List console users."""
    with open_services(database_url) as services:
        for user in services.console_users.list_users():
            out.print(f"{user.email}\t{user.created_at:%Y-%m-%d %H:%M}")
