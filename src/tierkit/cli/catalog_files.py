"""Catalog files on disk: YAML written the way a person would (short entries on one line,
sections apart), read back with the line of any problem."""

from __future__ import annotations

from typing import Any

import yaml

SCHEMA_COMMENT = "# yaml-language-server: $schema={url}"
_SECTIONS = ("credits", "features", "plans", "bundles")


class CatalogFileError(Exception):
    """A file that is not a catalog: its message names the line."""


class _Loader(yaml.SafeLoader):
    """YAML as JSON sees it: `2026-01-01` stays the text it is (the API reads its own
    timestamps), rather than a date that JSON cannot carry."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Lists indented under their key, as people write them.
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _OneLine(dict[str, Any]):
    """A mapping short enough to read on one line (`{feature: sso, value: true}`)."""


def _one_line(dumper: yaml.SafeDumper, value: _OneLine) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(_OneLine, _one_line)
_ONE_LINE_MAX = 100


def _shaped(value: Any, indent: int) -> Any:
    """Mappings that fit on a line become one-line mappings, the others blocks of lines."""
    if isinstance(value, list):
        return [_shaped(item, indent + 4) for item in value]
    if not isinstance(value, dict):
        return value
    flat = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=10**6, sort_keys=False)
    if "\n" not in flat.strip() and indent + len(flat.strip()) <= _ONE_LINE_MAX:
        return _OneLine(value)
    return {key: _shaped(item, indent + 2) for key, item in value.items()}


def to_yaml(catalog: dict[str, Any], schema_url: str | None) -> str:
    """The catalog as YAML: a schema line for editors, then each non-empty section."""
    parts = [SCHEMA_COMMENT.format(url=schema_url) + "\n"] if schema_url else []
    for name in _SECTIONS:
        if catalog.get(name):
            parts.append(
                yaml.dump(
                    {name: _shaped(catalog[name], 0)},
                    Dumper=_Dumper,
                    sort_keys=False,
                    default_flow_style=None,
                    allow_unicode=True,
                    width=110,
                )
            )
    return "\n".join(parts)


def parse_yaml(text: str, name: str) -> dict[str, Any]:
    """The file's data (a mapping), or `CatalogFileError` naming the line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{name}, line {mark.line + 1}" if mark is not None else name
        problem = getattr(error, "problem", None) or str(error)
        raise CatalogFileError(f"{where}: not valid YAML: {problem}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CatalogFileError(f"{name}: a catalog file is a mapping of sections ({_SECTIONS})")
    return data


def line_of(text: str, path: str) -> int | None:
    """The line (1-based) of a dotted path (`plans.2.entitlements.0.value`) in the YAML text,
    or of its nearest parent that is there."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in path.split("."):
        if node is None:
            break
        line = node.start_mark.line + 1
        node = _child(node, part)
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((value for key, value in node.value if key.value == part), None)
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        child: yaml.Node = node.value[int(part)]
        return child
    return None
