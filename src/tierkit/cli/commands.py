"""The `tierkit` command: serve, migrate, dev, demo, and the admin groups."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import typer

from tierkit import __version__
from tierkit.cli.admin import environments, keys
from tierkit.cli.catalog import catalog
from tierkit.cli.config import config
from tierkit.cli.context import (
    DEFAULT_URL,
    DatabaseUrl,
    ensure_schema_current,
    err,
    open_services,
    out,
)
from tierkit.cli.data import export_data, import_data
from tierkit.cli.plans import plans
from tierkit.cli.usage import usage
from tierkit.cli.users import users
from tierkit.cli.webhooks import webhooks
from tierkit.server.db import Database
from tierkit.server.db.database import describe_database_url
from tierkit.server.db.migrate import upgrade
from tierkit.server.secret_keys import secret_box
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.services.errors import DomainError
from tierkit.server.services.secret_box import generate_key
from tierkit.server.settings import Settings

app = typer.Typer(
    name="tierkit",
    help="Tierkit: entitlements for SaaS (features, plans, limits, usage, credits).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(keys, name="keys")
app.add_typer(environments, name="environments")
app.add_typer(webhooks, name="webhooks")
app.add_typer(usage, name="usage")
app.command("export-data")(export_data)
app.command("import-data")(import_data)
app.add_typer(users, name="users")
app.add_typer(catalog, name="catalog")
app.add_typer(plans, name="plans")
app.add_typer(config, name="config")

Host = Annotated[str, typer.Option(envvar="TIERKIT_HOST", help="Interface to listen on.")]
Port = Annotated[int, typer.Option(envvar="TIERKIT_PORT", min=1, max=65535, help="TCP port.")]
LogLevel = Annotated[
    str, typer.Option(envvar="TIERKIT_LOG_LEVEL", help="debug, info, warning or error.")
]
DEV_KEY_FILE = Path(".tierkit/dev-key")


@app.command()
def version() -> None:
    """Print Tierkit's version."""
    out.print(__version__)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for TIERKIT_SECRET_KEY (it seals webhook signing secrets at rest).

    To rotate, set `TIERKIT_SECRET_KEY=<new>,<old>`: servers seal every secret with the new key
    when they start; drop the old one once all of them have restarted."""
    out.print(generate_key())


@app.command()
def migrate(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Bring the database schema up to date and create the default environments."""
    database = Database(database_url)
    try:
        err.print(f"migrating {describe_database_url(database_url)}")
        applied = upgrade(database, on_step=lambda rev: err.print(f"  applied {rev}"))
        created = Services.build(database).environments.ensure_default_environments()
    finally:
        database.dispose()
    for env in created:
        err.print(f"  created environment {env.name}")
    err.print("schema is up to date" + ("" if applied else " (nothing to apply)"))


@app.command()
def demo(
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="Where to load the demo.")
    ] = "development",
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the environment has a catalog.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Load the demo: a small SaaS (features of every type, six plans) and its customers."""
    from tierkit.server.demo import is_catalog_empty, load_demo_catalog

    with open_services(database_url) as services:
        env = services.environments.get_environment(environment)
        if not is_catalog_empty(services, env.id):
            if if_empty:
                err.print(f"{environment} already has a catalog; the demo was not loaded")
                return
            err.print(f"[red]error:[/red] {environment} already has a catalog; use an empty one")
            raise typer.Exit(1)
        loaded = load_demo_catalog(services, env.id)
    err.print(
        f"loaded the demo into {environment}: {loaded.features} features, {loaded.plans} plans, "
        f"{loaded.companies} companies, {loaded.users} users"
    )


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[
        int, typer.Option(envvar="TIERKIT_WORKERS", min=1, help="Server processes.")
    ] = 1,
    database_url: DatabaseUrl = DEFAULT_URL,
    log_level: LogLevel = "info",
) -> None:
    """Serve the API (the schema must be current: see `tierkit migrate`)."""
    settings = _settings(database_url, log_level)
    _check_secret_key(settings)
    database = Database(settings.database_url)
    try:
        ensure_schema_current(database)
    finally:
        database.dispose()
    _run_server(settings, host, port, workers)


@app.command()
def dev(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = DEFAULT_URL,
    log_level: LogLevel = "info",
) -> None:
    """What `make run` does: migrate, load the demo when empty, print a key, serve."""
    migrate(database_url)
    demo(environment="development", if_empty=True, database_url=database_url)
    with open_services(database_url) as services:
        key = _development_key(services)
    base = f"http://{host}:{port}"
    out.print()
    out.print(f"[bold green]Tierkit[/bold green] {__version__} on {base}  (API docs: {base}/docs)")
    out.print(f"database: {describe_database_url(database_url)}")
    out.print(f"development secret key: [bold]{key}[/bold]  (saved in {DEV_KEY_FILE})")
    same_database = "" if database_url == DEFAULT_URL else " --database-url <the same URL>"
    out.print(f"admin console: {base}/console  (create a sign-in with")
    out.print(f"  tierkit users create-admin --email you@example.com{same_database})")
    out.print("try:")
    out.print(f'  curl -s {base}/v1/plans -H "Authorization: Bearer {key}"')
    out.print(f'  curl -s {base}/v1/plans/pro/features -H "Authorization: Bearer {key}"')
    out.print(f'  curl -s {base}/v1/companies/acme/usage -H "Authorization: Bearer {key}"')
    out.print(
        f'  curl -s -X POST {base}/v1/check -H "Authorization: Bearer {key}" '
        "-H 'content-type: application/json' "
        """-d '{"company": "initech", "feature": "api_calls", "quantity": 5, "consume": true}'"""
    )
    out.print()
    settings = _settings(database_url, log_level)
    _check_secret_key(settings)
    _run_server(settings, host, port, workers=1)


def _settings(database_url: str, log_level: str) -> Settings:
    try:
        return Settings(database_url=database_url, log_level=log_level)
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _check_secret_key(settings: Settings) -> None:
    try:
        secret_box(settings).check()
    except DomainError as error:
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from error


def _development_key(services: Services) -> str:
    """The key in .tierkit/dev-key while it still works, else a new development secret key."""
    if DEV_KEY_FILE.exists():
        key = DEV_KEY_FILE.read_text(encoding="utf-8").strip()
        try:
            principal = services.api_keys.authenticate(key)
        except DomainError:
            pass
        else:
            if principal.environment == "development" and principal.kind is KeyKind.SECRET:
                return key
    _, key = services.api_keys.create_key("development", KeyKind.SECRET, "make run")
    DEV_KEY_FILE.parent.mkdir(exist_ok=True)
    DEV_KEY_FILE.write_text(key + "\n", encoding="utf-8")
    DEV_KEY_FILE.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return key


def _run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from tierkit.server.logs import configure_logging

    configure_logging(settings)
    # Worker processes build their own settings from the environment.
    os.environ["TIERKIT_DATABASE_URL"] = settings.database_url
    os.environ["TIERKIT_LOG_LEVEL"] = settings.log_level
    uvicorn.run(
        "tierkit.server.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=None,  # configure_logging formats uvicorn's loggers like ours
        proxy_headers=True,
        # Open SDK streams never end by themselves: shutdown cuts them after the grace time.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
