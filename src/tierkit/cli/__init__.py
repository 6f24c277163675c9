"""The `tierkit` command. It needs the server extra: `pip install "tierkit[server]"`."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from tierkit.cli.commands import app
    except ImportError as error:  # pragma: no cover - depends on what is installed
        sys.stderr.write(
            f"tierkit: {error.name or 'a dependency'} is missing; the command line needs the "
            'server extra: pip install "tierkit[server]"\n'
        )
        raise SystemExit(2) from error
    app()
