"""Environment and API key bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tierkit.server.api.schemas.common import InputModel, OutputModel
from tierkit.server.services.api_keys import KeyKind


class EnvironmentOut(OutputModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyCreate(InputModel):
    kind: KeyKind
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class ApiKeyOut(OutputModel):
    id: str
    environment: str
    kind: KeyKind
    name: str
    hint: str = Field(description="The key's prefix and last characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Accurate to about ten minutes.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. It is shown this once; store it now.")
