"""`tierkit catalog ...`: the catalog as code, against a running server (a laptop's or CI's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tierkit.cli.catalog_files import CatalogFileError, line_of, parse_yaml, to_yaml
from tierkit.cli.context import err, out
from tierkit.cli.remote import ApiKey, ServerError, ServerUrl, call, request, server_client
from tierkit.server.api.schemas.catalog import PUBLIC_SCHEMA_PATH, catalog_schema

catalog = typer.Typer(
    help="Export, diff and apply the catalog as a YAML file (talks to a running server).",
    no_args_is_help=True,
)

CatalogPath = Annotated[
    Path,
    typer.Argument(help="A catalog file, as `tierkit catalog export` writes it.", dir_okay=False),
]
NO_CHANGES, CHANGES = 0, 2
_SIGNS = {"create": ("+", "green"), "update": ("~", "yellow"), "archive": ("-", "red")}
_TIMEOUT = 120  # a big catalog applies in one transaction


@catalog.command("export")
def export(
    url: ServerUrl = "http://127.0.0.1:8000",
    key: ApiKey = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write the environment's catalog as a YAML file.

    Credit types, features with their rules, plans and bundles, in the shape of the API's
    create bodies. The first line points editors at the server's JSON Schema."""
    with server_client(url, key, _TIMEOUT) as client:
        data = call(client, "GET", "/v1/catalog")
    text = to_yaml(data, f"{url.rstrip('/')}{PUBLIC_SCHEMA_PATH}")
    if output is None:
        out.file.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@catalog.command("diff")
def diff(path: CatalogPath, url: ServerUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """Show what `apply` would change, like `terraform plan`; writes nothing.

    `+` create, `~` update (field: before -> after), `-` archive. The server checks the whole
    change (and rolls it back), so errors show here as they would on apply.

    Exit code: 0 no changes, 2 changes, 1 error (a bad file, a server error)."""
    reply = _apply(path, url, key, dry_run=True, allow_archive=False)
    _print_changes(reply)
    raise typer.Exit(CHANGES if reply["changes"] else NO_CHANGES)


@catalog.command("apply")
def apply(
    path: CatalogPath,
    url: ServerUrl = "http://127.0.0.1:8000",
    key: ApiKey = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show the changes; write nothing.")
    ] = False,
    allow_archive: Annotated[
        bool,
        typer.Option("--allow-archive", help="Archive the features and plans the file omits."),
    ] = False,
) -> None:
    """Make the environment's catalog match the file, in one transaction.

    All of the change is written or none of it. Features and plans the file omits are
    archived only with --allow-archive; credit types and bundles it omits are left as they
    are. Applying the same file again changes nothing.

    Exit code: 0 applied (or nothing to change), 1 refused or failed (nothing written)."""
    reply = _apply(path, url, key, dry_run=dry_run, allow_archive=allow_archive)
    _print_changes(reply)
    if reply["changes"] and dry_run:
        err.print("dry run: nothing was written")


def _apply(path: Path, url: str, key: str, *, dry_run: bool, allow_archive: bool) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        data = parse_yaml(text, str(path))
    except OSError as error:
        err.print(f"[red]error:[/red] cannot read {path}: {error.strerror or error}")
        raise typer.Exit(1) from error
    except CatalogFileError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from error
    body = {"catalog": data, "dry_run": dry_run, "allow_archive": allow_archive}
    with server_client(url, key, _TIMEOUT) as client:
        try:
            return request(client, "POST", "/v1/catalog/apply", json=body)
        except ServerError as error:
            _print_error(error, path, text)
            raise typer.Exit(1) from error


def _print_error(error: ServerError, path: Path, text: str) -> None:
    err.print(f"[red]error:[/red] {error.status}: {escape(str(error.error.get('message')))}")
    for detail in error.error.get("details") or []:
        param = str(detail.get("param") or "")
        line = line_of(text, param) if error.status == 400 else None
        where = f"{path}:{line}: " if line is not None else ""
        err.print(escape(f"  {where}{param}: {detail.get('message')}"))
    if error.error.get("code") == "destructive_change":
        err.print("run again with --allow-archive to archive them, or add them to the file")


def _print_changes(reply: Any) -> None:
    for change in reply["changes"]:
        sign, color = _SIGNS[change["action"]]
        noun = change["kind"].rstrip("s")
        line = escape(f"{sign} {change['action']} {noun} {change['key']}")
        out.print(f"[{color}]{line}[/{color}]")
        for field in change["fields"]:
            for name, before, after in _leaves(field["field"], field["before"], field["after"]):
                shown = f"{escape(_show(before))} [dim]->[/dim] {escape(_show(after))}"
                out.print(f"    {escape(name)}: {shown}")
    for item in reply["unmanaged"]:
        out.print(
            f"[dim]  {item['kind'].rstrip('s')} {escape(item['key'])}: not in the file, left "
            "as it is (unmanaged)[/dim]"
        )
    summary = reply["summary"]
    if not reply["changes"]:
        out.print("No changes: the catalog matches the file.")
        return
    if reply["applied"]:
        out.print(
            f"[bold]Applied:[/bold] {summary['create']} created, {summary['update']} updated, "
            f"{summary['archive']} archived."
        )
        return
    out.print(
        f"[bold]Plan:[/bold] {summary['create']} to create, {summary['update']} to update, "
        f"{summary['archive']} to archive."
    )


def _leaves(name: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """What differs between two values, down to the keys of mappings present on both sides
    (`prices.0.amount: 2900 -> 3900` rather than two whole prices)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [(name, before, after)]
    keys = [*before, *(key for key in after if key not in before)]
    return [
        leaf
        for key in keys
        if before.get(key) != after.get(key)
        for leaf in _leaves(f"{name}.{key}", before.get(key), after.get(key))
    ]


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


@catalog.command("schema")
def schema() -> None:
    """Print the JSON Schema of catalog files.

    The server serves it at /catalog.schema.json (no key needed) and /v1/catalog/schema; the
    repository keeps it as docs/catalog.schema.json."""
    out.file.write(json.dumps(catalog_schema(), indent=2, ensure_ascii=False) + "\n")
