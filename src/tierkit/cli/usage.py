"""`tierkit usage verify`: recount usage counters from the raw events (opens the database)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tierkit.cli.context import DEFAULT_URL, DatabaseUrl, err, open_services, out, progress_bar
from tierkit.server.services.usage_verify import UsageVerifyService, VerifyReport

usage = typer.Typer(help="Check usage counters against the raw events.", no_args_is_help=True)


@usage.command("verify")
def verify(
    environment: Annotated[
        str | None,
        typer.Option("--environment", "-e", help="Only this environment's companies."),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Set each drifted counter to its recount.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Recount every usage counter from the raw events it summarises and list any drift.

    Safe while the server ingests: each company is recounted under its lock.

    Exits with 1 when a counter drifted and --repair was not given (for cron jobs and CI).
    """
    with open_services(database_url) as services, progress_bar("recounting companies") as update:
        report = UsageVerifyService(services.database).verify(
            environment, repair=repair, progress=update
        )
    _print_report(report)
    if report.drifts and not repair:
        raise typer.Exit(1)


def _print_report(report: VerifyReport) -> None:
    if report.drifts:
        table = Table("environment", "company", "meter", "window", "stored", "recounted")
        for drift in report.drifts:
            window = f"{drift.period_start:%Y-%m-%d %H:%M} .. {drift.period_end:%Y-%m-%d %H:%M}"
            table.add_row(
                drift.environment,
                drift.company,
                drift.meter,
                window,
                f"{drift.stored:g}",
                f"{drift.recounted:g}",
            )
        out.print(table)
    checked = f"{report.counters} counters of {report.companies} companies"
    if not report.drifts:
        err.print(f"[green]ok:[/green] {checked} match their raw events.")
    elif report.repaired:
        err.print(f"[yellow]repaired:[/yellow] {len(report.drifts)} of {checked} drifted.")
    else:
        err.print(
            f"[red]drift:[/red] {len(report.drifts)} of {checked} differ from their raw events;"
            " run with --repair to set them to the recount."
        )
