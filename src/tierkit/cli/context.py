"""What commands share: settings from flags and environment, the database, the services."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tierkit.server.db import Database
from tierkit.server.db.migrate import current_revision, head_revision
from tierkit.server.services.audit import acting_as
from tierkit.server.services.change_relay import build_relay
from tierkit.server.services.container import Services
from tierkit.server.services.errors import DomainError
from tierkit.server.settings import DEFAULT_DATABASE_URL

# Results go to stdout (so `$(tierkit keys create ...)` works); everything else to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TIERKIT_DATABASE_URL",
        help="sqlite:///path.db or postgresql://user:password@host:5432/db.",
        show_default=True,
    ),
]
DEFAULT_URL = DEFAULT_DATABASE_URL


@contextmanager
def open_services(database_url: str, *, require_schema: bool = True) -> Iterator[Services]:
    """Services on the database; exits with a clear message on a domain error."""
    database = Database(database_url)
    try:
        if require_schema:
            ensure_schema_current(database)
        with acting_as("cli"):  # the audit log names the CLI as the actor
            yield Services.build(database, relay=build_relay(database, _redis_url()))
    except DomainError as error:
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from error
    finally:
        database.dispose()


def _redis_url() -> str | None:
    """Servers configured with TIERKIT_REDIS_URL hear of the CLI's writes through it."""
    return os.environ.get("TIERKIT_REDIS_URL") or None


def ensure_schema_current(database: Database) -> None:
    try:
        revision = current_revision(database)
    except Exception as error:
        err.print(f"[red]error:[/red] cannot open the database: {error}")
        raise typer.Exit(1) from error
    if revision != head_revision():
        err.print(
            f"[red]error:[/red] the database schema is at {revision or 'nothing'}, this version "
            f"needs {head_revision()}: run [bold]tierkit migrate[/bold] first."
        )
        raise typer.Exit(1)


@contextmanager
def progress_bar(label: str, *, transient: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, and the `update(done, total)` that moves it (stdout stays
    for results)."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=transient) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
