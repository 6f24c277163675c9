"""Where the keys sealing secrets at rest come from (`services/secret_box.py` uses them).

In order: `TIERKIT_SECRET_KEY`; the file `TIERKIT_SECRET_KEY_FILE`; for a SQLite database
file, the key file beside it (`<database>.secret-key`, created with mode 0600 on first use, so
`make run` and `tierkit dev` need no set-up); for an in-memory SQLite database, a key of the
process. A PostgreSQL deployment with neither setting has no key: the server refuses to start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from tierkit.server.db.database import normalize_database_url
from tierkit.server.services.secret_box import SecretBox, SecretKeyError, generate_key, parse_keys
from tierkit.server.settings import Settings

logger = logging.getLogger("tierkit.server")
KEY_FILE_SUFFIX = ".secret-key"


def secret_box(settings: Settings) -> SecretBox:
    """A box whose keys load on first use (`check()` loads them now)."""
    return SecretBox(lambda: parse_keys(_key_text(settings)))


def secret_box_of_environment(database_url: str) -> SecretBox:
    """The box of the keys `TIERKIT_SECRET_KEY*` (read when first needed) for the database."""
    return SecretBox(lambda: parse_keys(_key_text(Settings(database_url=database_url))))


def sqlite_key_file(database_url: str) -> Path | None:
    """The key file beside a SQLite database file; None for other databases."""
    url = make_url(normalize_database_url(database_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database + KEY_FILE_SUFFIX)


def _key_text(settings: Settings) -> str:
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        return settings.secret_key.get_secret_value()  # (set but empty counts as not set)
    if settings.secret_key_file is not None:
        return _read(settings.secret_key_file)
    url = make_url(normalize_database_url(settings.database_url))
    if url.get_backend_name() == "sqlite":
        beside = sqlite_key_file(settings.database_url)
        return generate_key() if beside is None else _read_or_create(beside)
    raise SecretKeyError(
        "No secret key: set TIERKIT_SECRET_KEY (generate one with `tierkit secret-key`) or "
        "TIERKIT_SECRET_KEY_FILE. With PostgreSQL, Tierkit needs one to seal webhook signing "
        "secrets; keep it out of the database and its backups.",
        code="secret_key_missing",
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise SecretKeyError(
            f"Cannot read the secret key file {path}: {error.strerror}.",
            code="secret_key_missing",
        ) from error


def _read_or_create(path: Path) -> str:
    if path.exists():
        return _read(path)
    key = generate_key()
    draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    try:
        os.link(draft, path)  # whole or not at all; another process may have won the race
    except FileExistsError:
        return _read(path)
    finally:
        draft.unlink()
    logger.warning(
        "generated the secret key %s (mode 0600) for the SQLite database: it seals webhook "
        "signing secrets. Back it up apart from the database; in production set "
        "TIERKIT_SECRET_KEY instead.",
        path,
    )
    return key
