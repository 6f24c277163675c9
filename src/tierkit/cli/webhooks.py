"""`tierkit webhooks ...`: try an endpoint through a running server."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from tierkit.cli.context import err, out
from tierkit.cli.remote import ApiKey, ServerUrl, call, server_client

webhooks = typer.Typer(
    help="List webhook endpoints and send them test events (talks to a running server).",
    no_args_is_help=True,
)


@webhooks.command("list")
def list_webhooks(url: ServerUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """The environment's endpoints."""
    with server_client(url, key) as client:
        endpoints = call(client, "GET", "/v1/webhooks")["data"]
    table = Table("id", "url", "events", "enabled", "failing since")
    for endpoint in endpoints:
        table.add_row(
            endpoint["id"],
            endpoint["url"],
            ", ".join(endpoint["event_types"]) or "all",
            "yes" if endpoint["enabled"] else f"no ({endpoint['disabled_reason'] or 'by hand'})",
            endpoint["failing_since"] or "",
        )
    out.print(table)


@webhooks.command("test")
def send_test_event(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id (`whe_...`).")],
    url: ServerUrl = "http://127.0.0.1:8000",
    key: ApiKey = "",
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the first attempt's outcome.")
    ] = 30.0,
) -> None:
    """Send a `webhook.test` event to an endpoint and report the receiver's answer.

    Exits 1 when the receiver did not answer 2xx, or no attempt was made within `--wait`."""
    with server_client(url, key) as client:
        delivery = call(client, "POST", f"/v1/webhooks/{endpoint_id}/test")
        err.print(f"sent {delivery['event_id']} (delivery {delivery['id']}); waiting for it...")
        deadline = time.monotonic() + wait
        attempt = None
        while time.monotonic() < deadline:
            page = call(client, "GET", f"/v1/webhooks/{endpoint_id}/deliveries?limit=20")
            found = next((d for d in page["data"] if d["id"] == delivery["id"]), None)
            if found is not None and found["attempt_log"]:
                attempt = found["attempt_log"][0]
                break
            time.sleep(0.2)
    if attempt is None:
        err.print(
            f"[red]no attempt within {wait:g}s[/red]: is webhook delivery on in the server "
            "(TIERKIT_WEBHOOK_DISPATCH)?"
        )
        raise typer.Exit(1)
    status = attempt["status_code"]
    outcome = f"HTTP {status}" if status is not None else attempt["error"]
    out.print(f"{outcome} in {attempt['latency_ms']:.0f} ms")
    if attempt["response_excerpt"]:
        out.print(attempt["response_excerpt"])
    if status is None or not 200 <= status < 300:
        raise typer.Exit(1)
