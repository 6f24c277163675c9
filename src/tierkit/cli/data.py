"""`tierkit export-data` and `tierkit import-data`: a database's data as JSON Lines (opens the
database directly), to back it up or move it between SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from tierkit.cli.context import DEFAULT_URL, DatabaseUrl, err, open_services, progress_bar
from tierkit.server.services.data_transfer import DataTransferService


def export_data(
    environment: Annotated[
        str | None,
        typer.Option("--environment", "-e", help="Only this environment (default: everything)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Write the database's data (or one environment's) as JSON Lines, streamed.

    Import it elsewhere with `tierkit import-data FILE --database-url ...`.
    """
    with open_services(database_url) as services, progress_bar("exporting rows") as update:
        sink: BinaryIO = output.open("wb") if output else sys.stdout.buffer
        try:
            lines = DataTransferService(services.database).export_lines(environment, update)
            for line in lines:
                sink.write(line + b"\n")
        finally:
            if output:
                sink.close()
            else:
                sink.flush()


def import_data(
    file: Annotated[Path, typer.Argument(help="An export (`-` reads stdin).", allow_dash=True)],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Delete what the target's environments of the same names hold first (in the "
            "same transaction), instead of refusing to import into them.",
        ),
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Write an export into this database, in one transaction (all of it or nothing).

    The database must be migrated (`tierkit migrate`) to the export's schema revision. An
    environment it already has must be empty (a fresh database's are), unless `--replace`.
    Webhook secrets travel sealed: set TIERKIT_SECRET_KEY to (or after) the source's key.
    """
    with open_services(database_url) as services, progress_bar("importing rows") as update:
        source: BinaryIO = sys.stdin.buffer if str(file) == "-" else file.open("rb")
        transfer = DataTransferService(services.database, services.secret_box)
        with source:
            result = transfer.import_lines(source, update, replace=replace)
    for name, rows in sorted(result.replaced.items()):
        err.print(f"[yellow]replaced:[/yellow] {rows} rows that {name} held were deleted.")
    if result.renumbered:
        err.print(
            "renumbered past the target's own ids: " + ", ".join(sorted(result.renumbered)) + "."
        )
    err.print(
        f"[green]imported:[/green] {result.rows} rows of "
        f"{', '.join(result.environments) or 'no environment'}."
    )
