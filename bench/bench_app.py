"""The app `bench/checks.py` serves: Tierkit's own, plus a trivial route as the floor to beat."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from tierkit.server.app import create_app
from tierkit.server.settings import Settings


class EchoIn(BaseModel):
    company: str
    feature: str


class EchoOut(BaseModel):
    """About the size of a check reply for a metered feature."""

    feature: str
    company: str
    company_found: bool = True
    allowed: bool = True
    value: int = 10000
    unlimited: bool = False
    reason: str = "plan"
    plan: str | None = "pro"
    rule: str | None = None
    override_expires_at: str | None = None
    usage: dict[str, object] = {
        "used": 120,
        "limit": 10000,
        "remaining": 9880,
        "overage": 0,
        "period": "month",
        "period_start": "2026-11-01T00:00:00Z",
        "resets_at": "2026-12-01T00:00:00Z",
    }
    credits: None = None


def make_app() -> FastAPI:
    app = create_app(Settings())

    @app.post("/bench/echo")
    async def echo(body: EchoIn) -> EchoOut:
        return EchoOut(feature=body.feature, company=body.company)

    return app
