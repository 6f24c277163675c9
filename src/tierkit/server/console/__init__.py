"""The admin console at /console: server-rendered pages over the services (never the
database), signed in with console users (`tierkit users create-admin`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tierkit.server.console import companies, features, logs, plans, sign_in
from tierkit.server.console.web import PREFIX


def install_console(app: FastAPI) -> None:
    """Add the console's pages and static files to the app."""
    static = Path(__file__).parent / "static"
    # Before the routers: the last of them answers every other console address with a 404.
    app.mount(f"{PREFIX}/static", StaticFiles(directory=static), name="console-static")
    for router in (sign_in.router, features.router, plans.router, companies.router, logs.router):
        app.include_router(router)
