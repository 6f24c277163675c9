"""Catalog files as the CLI reads and writes them: YAML with the line of each problem."""

from __future__ import annotations

import pytest

from tierkit.cli.catalog_files import CatalogFileError, line_of, parse_yaml, to_yaml

TEXT = """\
# yaml-language-server: $schema=http://127.0.0.1:8000/catalog.schema.json

features:
  - {key: sso, name: SSO, type: boolean, description: 2026-01-01}
plans:
  - key: pro
    name: Pro
    entitlements:
      - {feature: sso, value: true}
      - feature: projects
        value: lots
"""


def test_parse_yaml__dates__stay_the_text_written() -> None:
    data = parse_yaml(TEXT, "catalog.yaml")

    assert data["features"][0]["description"] == "2026-01-01"


def test_parse_yaml__broken_yaml__names_the_line() -> None:
    with pytest.raises(CatalogFileError, match=r"catalog.yaml, line 3: not valid YAML"):
        parse_yaml("plans:\n  - key: pro\n  name: [\n", "catalog.yaml")


def test_parse_yaml__not_a_mapping__says_what_a_catalog_is() -> None:
    with pytest.raises(CatalogFileError, match="a mapping of sections"):
        parse_yaml("- pro\n", "catalog.yaml")


def test_line_of__a_path_in_the_file__its_line_or_its_nearest_parents() -> None:
    assert line_of(TEXT, "plans.0.entitlements.1.value") == 11
    assert line_of(TEXT, "plans.0.entitlements.0.value") == 9
    assert line_of(TEXT, "plans.0.prices.0") == 6
    assert line_of(TEXT, "features.0.key") == 4


def test_to_yaml__what_it_writes__reads_back_the_same() -> None:
    data = parse_yaml(TEXT, "catalog.yaml")
    data["features"][0]["description"] = "Two lines:\nthe second."

    text = to_yaml(data, "http://x/catalog.schema.json")

    assert text.startswith("# yaml-language-server: $schema=http://x/catalog.schema.json\n")
    assert parse_yaml(text, "catalog.yaml") == data
