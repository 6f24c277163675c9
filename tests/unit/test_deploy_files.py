"""The deployment files in deploy/ and the configuration reference agree with the code: the
commands and flags they run exist, the settings they set are real, the generated reference is
fresh. (No docker: the files are parsed, not run.)"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from tierkit.cli.commands import app
from tierkit.cli.config import configuration_reference
from tierkit.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _cli() -> Any:
    return get_command(app)


def _serve_params() -> list[Any]:
    params: list[Any] = _cli().commands["serve"].params
    return params


def _known_variables() -> set[str]:
    settings = {f"TIERKIT_{name.upper()}" for name in Settings.model_fields}
    flags = {p.envvar for p in _serve_params() if getattr(p, "envvar", None)}
    return settings | flags


def _assert_runs_a_real_command(argv: list[str]) -> None:
    """`argv` is `tierkit <command> [flags...]` with commands and flags the CLI has."""
    assert Path(argv[0]).name == "tierkit", argv
    command = _cli().commands.get(argv[1])
    assert command is not None, f"`tierkit {argv[1]}` is not a command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    flags = [arg for arg in argv[2:] if arg.startswith("--")]
    unknown = [flag for flag in flags if flag.split("=")[0] not in options]
    assert unknown == [], f"`tierkit {argv[1]}` has no {unknown} (it has {sorted(options)})"


def test_configuration_reference__committed_file__is_fresh() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    generated = configuration_reference(_serve_params())
    assert committed == generated, (
        "docs/configuration.md is stale: run `tierkit config reference > docs/configuration.md`"
    )


def test_config_reference_command__prints_every_setting_and_flag() -> None:
    result = CliRunner().invoke(app, ["config", "reference"])
    assert result.exit_code == 0, result.output
    documented = set(re.findall(r"^\| `(TIERKIT_[A-Z_]+)`", result.output, re.MULTILINE))
    assert documented == _known_variables()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_settings__every_field__has_a_description(name: str) -> None:
    description = Settings.model_fields[name].description
    assert description, f"Settings.{name} needs a description: it is the reference's text"
    assert description.endswith("."), description


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def test_compose__parses__builds_the_dockerfile_from_the_repository() -> None:
    services = _compose()["services"]
    builds = [s["build"] for s in services.values() if "build" in s]
    assert builds, "no service builds the Tierkit image"
    for build in builds:
        context = (DEPLOY / build["context"]).resolve()
        assert (context / "pyproject.toml").exists(), context
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    # And PostgreSQL is the database, the server waiting for it through the migration
    assert services["db"]["image"].startswith("postgres:")
    assert services["tierkit"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose__commands_and_settings__exist() -> None:
    services = _compose()["services"]
    for name in ("migrate", "tierkit"):
        _assert_runs_a_real_command(services[name]["command"])
        environment = services[name]["environment"]
        unknown = {k for k in environment if k.startswith("TIERKIT_")} - _known_variables()
        assert unknown == set(), f"{name} sets unknown settings {unknown}"
        assert environment["TIERKIT_DATABASE_URL"].startswith("postgresql://")
    # And shutdown waits longer than the grace given to requests in flight
    grace = int(services["tierkit"]["environment"]["TIERKIT_SHUTDOWN_GRACE_SECONDS"])
    assert int(services["tierkit"]["stop_grace_period"].removesuffix("s")) > grace


def test_dockerfile__copies_what_exists_and_runs_a_real_command() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    [cmd] = re.findall(r"^CMD (\[.+\])$", text, re.MULTILINE)
    _assert_runs_a_real_command(json.loads(cmd))


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DEPLOY / "tierkit.service")
    return parser


def test_systemd_unit__exec_start_names_real_commands_and_flags() -> None:
    unit = _unit()
    _assert_runs_a_real_command(shlex.split(unit["Service"]["ExecStart"]))
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_environment_file__sets_real_settings() -> None:
    lines = (DEPLOY / "tierkit.env").read_text().splitlines()
    names = {
        line.lstrip("# ").split("=")[0]
        for line in lines
        if re.match(r"^#? ?TIERKIT_[A-Z_]+=", line)
    }
    assert "TIERKIT_DATABASE_URL" in names
    assert names - _known_variables() == set()


def test_dockerignore__keeps_what_the_dockerfile_copies_and_leaves_local_state_out() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out, then what the image needs back in
    kept = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for line in re.findall(r"^COPY (.+)$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE):
        *sources, _ = line.split()
        copied |= {source.rstrip("/") for source in sources}
    assert copied <= kept
