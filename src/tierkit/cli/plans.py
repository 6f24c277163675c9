"""`tierkit plans ...`: a plan's versions, and migrations between them (talks to a running
server, so it works from a laptop or a CI job against production)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import typer
from rich.table import Table

from tierkit.cli.context import err, out, progress_bar
from tierkit.cli.remote import ApiKey, ServerUrl, call, server_client

plans = typer.Typer(
    help="Plan versions and migrations between them (talks to a running server).",
    no_args_is_help=True,
)

PlanArgument = Annotated[str, typer.Argument(help="The plan's key.")]


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _entitled(entitlement: dict[str, Any]) -> str:
    value = "unlimited" if entitlement["unlimited"] else _shown(entitlement["value"])
    return f"{entitlement['feature']}={value}"


@plans.command("versions")
def list_versions(
    plan: PlanArgument, url: ServerUrl = "http://127.0.0.1:8000", key: ApiKey = ""
) -> None:
    """The plan's versions, newest first, with their subscribers."""
    table = Table("version", "subscribers", "created", "entitlements", "prices")
    cursor = None
    with server_client(url, key) as client:
        while True:
            query = urlencode({"limit": 100} | ({"cursor": cursor} if cursor else {}))
            page = call(client, "GET", f"/v1/plans/{plan}/versions?{query}")
            for version in page["data"]:
                table.add_row(
                    f"{version['version']}{' (current)' if version['current'] else ''}",
                    str(version["subscribers"]),
                    version["created_at"],
                    ", ".join(_entitled(e) for e in version["entitlements"]),
                    ", ".join(
                        f"{p['amount']} {p['currency']}/{p['interval']}" for p in version["prices"]
                    ),
                )
            cursor = page["next_cursor"]
            if cursor is None:
                break
    out.print(table)


@plans.command("migrate")
def migrate(  # noqa: PLR0917 - typer passes its options by name
    plan: PlanArgument,
    from_version: Annotated[int, typer.Option("--from", min=1, help="The version to move from.")],
    to_version: Annotated[int, typer.Option("--to", min=1, help="The version to move to.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the impact per company; change nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Subscriptions moved per request.")
    ] = 100,
    url: ServerUrl = "http://127.0.0.1:8000",
    key: ApiKey = "",
) -> None:
    """Move a plan's subscriptions from one version to another, in batches, with a progress
    bar. Interrupted, it resumes where it stopped when run again. `--dry-run` shows what each
    company would gain and lose, and who would be over a new limit."""
    path = f"/v1/plans/{plan}/migrations"
    body = {"from_version": from_version, "to_version": to_version}
    # A batch or a dry run over many companies takes longer than a plain request.
    with server_client(url, key, timeout=300) as client:
        if dry_run:
            _print_report(call(client, "POST", path, json=body | {"dry_run": True}))
            return
        moved = _run_batches(client, path, body | {"batch_size": batch_size})
    out.print(
        f"Migrated {moved} subscriptions of {plan} from version {from_version} to {to_version}."
    )


def _run_batches(client: httpx.Client, path: str, body: dict[str, Any]) -> int:
    moved: int = 0
    with progress_bar("migrating", transient=False) as update:
        while True:
            batch = call(client, "POST", path, json=body)
            moved += int(batch["migrated"])
            update(moved, moved + batch["remaining"])
            if batch["done"]:
                return moved
            if batch["migrated"] == 0:
                # Another run holds the rest (PostgreSQL skips rows locked by it).
                err.print(
                    f"[yellow]{batch['remaining']} subscriptions are being moved by another "
                    "migration;[/yellow] run again to finish."
                )
                raise typer.Exit(1)


def _print_report(report: dict[str, Any]) -> None:
    out.print(
        f"Moving {report['subscriptions']} subscriptions ({report['companies']} companies) of "
        f"{report['plan']} from version {report['from_version']} to {report['to_version']}: "
        f"{len(report['impact'])} companies change, {len(report['losing_access'])} lose access, "
        f"{len(report['over_limit'])} would be over a new limit."
    )
    if not report["impact"]:
        return
    table = Table("company", "loses access", "over limit", "changes")
    for impact in report["impact"]:
        changes = [
            f"{c['feature']}: {_shown(c['before']['value'])} -> {_shown(c['after']['value'])}"
            f" ({c['effect']})"
            for c in impact["changes"]
        ]
        over = [
            f"{o['feature']}: {o['used']:g} used > {o['limit']:g}" for o in impact["over_limit"]
        ]
        table.add_row(
            impact["company"],
            "yes" if impact["loses_access"] else "",
            "\n".join(over),
            "\n".join(changes),
        )
    out.print(table)
