"""Storage: tables, the database handle and migrations (SQLite and PostgreSQL)."""

from tierkit.server.db.database import Database, normalize_database_url

__all__ = ["Database", "normalize_database_url"]
