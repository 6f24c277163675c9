"""Hostile input over every route that takes a body, read from the app's OpenAPI (so a new
route joins by itself, and needs a valid body below to be reached):

- malformed bodies (over the size limit, deep nesting, a huge array, invalid UTF-8, control
  characters in keys, numbers beyond 64 bits, NaN and infinities, a timestamp out of range)
  get a 4xx in the error envelope and store nothing;
- SQL and template metacharacters in every string field (the body's own, the values and keys
  of its maps, the items of its string lists): a field whose schema rejects them (a key's
  pattern, a format, an enum) gets a 4xx and stores nothing; free text is either refused with
  a 4xx or stored and returned byte for byte, never interpreted.

"Stores nothing" is read from the audit log: every mutating route writes an entry in the
transaction of its change (`test_audit_every_route.py`), so a refused request adds none.
Per-route tables of one kind of bad input live in `test_*_bad_input.py`; this one sweeps.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from tests.integration.test_isolation_every_route import World, build_world
from tests.support.console import ConsoleClient
from tierkit.server.app import create_app
from tierkit.server.db.tables import AuditEntryRow
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

_numbers = itertools.count(1)
Body = Callable[[int], Any]

VALID: dict[tuple[str, str], Body] = {
    ("POST", "/v1/api-keys"): lambda n: {"kind": "secret", "name": f"hx {n}"},
    ("POST", "/v1/features"): lambda n: {"key": f"hx_{n}", "name": "F", "type": "boolean"},
    ("PATCH", "/v1/features/{key}"): lambda n: {"name": "F"},
    ("PUT", "/v1/features/{key}/rules"): lambda n: [],
    ("POST", "/v1/plans"): lambda n: {"key": f"hx_{n}", "name": "P"},
    ("PATCH", "/v1/plans/{key}"): lambda n: {"name": "P"},
    ("PUT", "/v1/plans/{key}/entitlements/{feature}"): lambda n: {"value": True},
    ("POST", "/v1/plans/{key}/migrations"): None,  # type: ignore[dict-item]
    ("POST", "/v1/catalog/apply"): None,  # type: ignore[dict-item]
    ("PUT", "/v1/companies/{key}"): lambda n: {"name": "C"},
    ("POST", "/v1/companies/{key}/subscriptions"): lambda n: {"plan": "zz_pro"},
    ("PATCH", "/v1/companies/{key}/subscriptions/{subscription_id}"): lambda n: {"quantity": 2},
    ("PUT", "/v1/companies/{key}/overrides/{feature}"): lambda n: {"value": True},
    ("PUT", "/v1/users/{key}"): lambda n: {"name": "U"},
    ("POST", "/api/accounts"): lambda n: {"key": f"hx_{n}", "name": "A"},
    ("PUT", "/api/accounts/{key}"): lambda n: {"name": "A"},
    ("POST", "/api/features/{key}/resolve"): lambda n: {"context": {"account_key": "zz_acme"}},
    ("POST", "/api/features/resolve"): lambda n: {"context": {"account_key": "zz_acme"}},
    ("POST", "/api/metrics/set"): lambda n: {
        "key": "zz_calls",
        "account_key": "zz_acme",
        "value": 1,
    },
    ("POST", "/v1/check"): lambda n: {"company": "zz_acme", "feature": "zz_sso"},
    ("POST", "/v1/check/bulk"): lambda n: {"company": "zz_acme"},
    ("POST", "/v1/events"): lambda n: {"event": "zz_call", "company": "zz_acme"},
    ("POST", "/v1/metrics/set"): lambda n: {"key": "zz_calls", "company": "zz_acme", "value": 1},
    ("POST", "/v1/credits"): lambda n: {"key": f"hx_{n}", "name": "C"},
    ("POST", "/v1/companies/{key}/credit-grants"): lambda n: {"credit": "zz_ai", "amount": 1},
    ("POST", "/v1/credit-bundles"): lambda n: {
        "key": f"hx_{n}",
        "name": "B",
        "credit": "zz_ai",
        "amount": 1,
        "price": {"currency": "usd", "amount": 9},
    },
    ("POST", "/ofrep/v1/evaluate/flags/{key}"): lambda n: {"context": {"targetingKey": "zz_acme"}},
    ("POST", "/ofrep/v1/evaluate/flags"): lambda n: {"context": {"targetingKey": "zz_acme"}},
    ("POST", "/v1/webhooks"): lambda n: {"url": "https://example.com/h"},
    ("PATCH", "/v1/webhooks/{endpoint_id}"): lambda n: {"description": "d"},
    ("POST", "/compat/schematic/flags/{key}/check"): lambda n: {"company": {"id": "zz_acme"}},
    ("POST", "/compat/schematic/flags/check"): lambda n: {"company": {"id": "zz_acme"}},
    ("POST", "/compat/schematic/companies"): lambda n: {"keys": {"id": f"hx_{n}"}, "name": "C"},
    ("POST", "/compat/schematic/users"): lambda n: {"keys": {"id": f"hx_{n}"}, "name": "U"},
    ("POST", "/compat/schematic/batch"): lambda n: {
        "events": [{"type": "track", "body": {"event": "zz_call", "company": {"id": "zz_acme"}}}]
    },
    ("POST", "/compat/commet/api/v1/usage/check"): lambda n: {
        "customerId": "zz_acme",
        "featureCode": "zz_calls",
    },
    ("POST", "/compat/commet/api/v1/usage/events"): lambda n: {
        "customerId": "zz_acme",
        "featureCode": "zz_calls",
    },
    ("POST", "/compat/commet/api/v1/plans"): lambda n: {"name": "T", "code": f"hx_{n}"},
    ("POST", "/compat/commet/api/v1/plans/manage"): lambda n: {"name": "T", "code": f"hx_{n}"},
}
"""A body each route accepts (None: a route whose strings are all covered elsewhere: plan
migrations take numbers only; catalog documents are swept by `test_catalog_bad_input.py`)."""

EVALUATING = {
    ("POST", "/api/features/{key}/resolve"),
    ("POST", "/api/features/resolve"),
    ("POST", "/ofrep/v1/evaluate/flags/{key}"),
    ("POST", "/ofrep/v1/evaluate/flags"),
    ("POST", "/v1/check"),
    ("POST", "/v1/check/bulk"),
    ("POST", "/v1/events"),
    ("POST", "/api/metrics/set"),
    ("POST", "/v1/metrics/set"),
    ("POST", "/compat/schematic/flags/{key}/check"),
    ("POST", "/compat/schematic/flags/check"),
    ("POST", "/compat/schematic/batch"),
    ("POST", "/compat/commet/api/v1/usage/check"),
    ("POST", "/compat/commet/api/v1/usage/events"),
}
"""Routes whose strings feed an evaluation or an event and are not echoed back."""

READ_BACK: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("POST", "/api/accounts"): lambda body: f"/v1/companies/{quote(body['key'], safe='')}",
    ("PUT", "/api/accounts/{key}"): lambda body: "/v1/companies/zz_acme",
}
"""Routes whose reply does not show all they store (Kickplan's account shape omits its custom
fields; company keys are any printable text, URL-encoded in paths): where our API reads it
back."""

PAYLOADS = [
    "'; DROP TABLE features; --",
    "' OR '1'='1",
    "{{7*7}} ${7*7} #{7*7} {% if true %}x{% endif %}",
    '<script>alert("x")</script> &amp;',
    "%s %n \\x00 `id` $(id)",
]


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(database_url="sqlite://")).openapi()
    return document


def routes_with_a_body(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    )


def resolved(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return resolved(options[0], document) if len(options) == 1 else schema


def body_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = document["paths"][path][method.lower()]["requestBody"]["content"]
    return resolved(content["application/json"].get("schema", {}), document)


def accepts(field: dict[str, Any], value: str) -> bool:
    """Whether the field's schema lets the string through (pattern, format, enum, bounds)."""
    if field.get("type") not in (None, "string") or "enum" in field or "const" in field:
        return False
    if field.get("format") in ("date-time", "date", "uri", "email", "uuid"):
        return False
    if "maxLength" in field and len(value) > field["maxLength"]:
        return False
    return "pattern" not in field or re.search(field["pattern"], value) is not None


def string_fields(schema: dict[str, Any], document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, kind): `text` a string field, `list` a list of strings, `map` an object of
    free keys."""
    for name, declared in schema.get("properties", {}).items():
        field = resolved(declared, document)
        kind = field.get("type")
        if kind == "string":
            yield name, "text"
        elif kind == "array" and resolved(field.get("items", {}), document).get("type") == "string":
            yield name, "list"
        elif kind == "object" and "properties" not in field:
            yield name, "map"


def found_in(reply: Any, value: str) -> bool:
    """Whether the value appears, whole, as a string or key anywhere in the reply."""
    if isinstance(reply, str):
        return reply == value
    if isinstance(reply, dict):
        return any(k == value or found_in(v, value) for k, v in reply.items())
    if isinstance(reply, list):
        return any(found_in(item, value) for item in reply)
    return False


def audit_entries(services: Services) -> int:
    """How many audit entries the database holds (of every environment)."""
    with services.database.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0


@pytest.fixture
def world(api: httpx.Client, services: Services) -> World:
    return build_world(api, services)


def test_every_route_with_a_body__has_a_valid_body_here() -> None:
    missing = [route for route in routes_with_a_body(openapi()) if route not in VALID]
    assert missing == [], "add a valid body for each to VALID"


_PLACE = "\u0000hostile"
LIMIT = Settings().max_body_bytes

MALFORMED: dict[str, tuple[str, bytes]] = {
    # label: (the field it goes in: any, number, date-time, map or list; the raw JSON)
    "over the size limit": ("any", b'"' + b"x" * LIMIT + b'"'),
    "deep nesting": ("any", b"[" * 100_000 + b"]" * 100_000),
    "a huge array": ("list", b"[" + b",".join([b'"x"'] * 200_000) + b"]"),
    "invalid UTF-8": ("any", b'"\xff\xfe\xc3("'),
    "a lone surrogate": ("any", b'"\\ud800"'),
    "a control character in a key": ("map", b'{"a\\u0000b": "x", "c\\u001bd": "y"}'),
    "a number beyond 64 bits": ("number", b"18446744073709551616"),
    "a negative number beyond 64 bits": ("number", b"-18446744073709551617"),
    "NaN": ("number", b"NaN"),
    "Infinity": ("number", b"-Infinity"),
    "a timestamp out of range": ("date-time", b'"10000-01-01T00:00:00Z"'),
    "a timestamp of year 0": ("date-time", b'"0000-01-01T00:00:00Z"'),
}


def field_for(  # noqa: PLR0911 - one return per kind reads best
    kind: str, schema: dict[str, Any], document: dict[str, Any], body: Any
) -> str | None:
    """A field of the body's schema that takes this kind of value (None: it has none)."""
    if not isinstance(body, dict):
        return None
    for name, declared in schema.get("properties", {}).items():
        field = resolved(declared, document)
        if kind == "any" and name in body:
            return str(name)
        if kind == "number" and field.get("type") in ("integer", "number"):
            return str(name)
        if kind == "date-time" and field.get("format") == "date-time":
            return str(name)
        if kind == "map" and field.get("type") == "object" and "properties" not in field:
            return str(name)
        if kind == "list" and field.get("type") == "array":
            return str(name)
    return None


def with_raw(body: dict[str, Any], field: str, raw: bytes) -> bytes:
    """The body as JSON with `raw` spliced in as the field's value."""
    return orjson.dumps({**body, field: _PLACE}).replace(orjson.dumps(_PLACE), raw)


def is_refusal(reply: httpx.Response) -> bool:
    """A 4xx in the route's documented envelope (ours and Commet's; Kickplan's, OFREP's and
    Schematic's on theirs)."""
    try:
        body = reply.json()
    except ValueError:
        return False
    envelope = isinstance(body, dict) and (
        (isinstance(body.get("error"), dict) and bool(body["error"].get("code")))
        or bool(body.get("errorCode"))  # OFREP
        or (bool(body.get("type")) and bool(body.get("message")))  # Kickplan
        or (isinstance(body.get("error"), str) and bool(body.get("code")))  # Schematic
    )
    return 400 <= reply.status_code < 500 and envelope


def test_malformed_bodies__every_route__4xx_in_the_envelope_and_nothing_stored(
    api: httpx.Client, services: Services, world: World
) -> None:
    document = openapi()
    wrong, sent = [], 0
    before = audit_entries(services)
    for method, template in routes_with_a_body(document):
        valid = VALID[(method, template)]
        body = valid(next(_numbers)) if valid is not None else {}
        schema = body_schema(document, method, template)
        for label, (kind, raw) in MALFORMED.items():
            field = field_for(kind, schema, document, body)
            if field is None:
                continue  # nothing of this kind in its body
            reply = api.request(
                method,
                world.path(template),
                content=with_raw(body, field, raw),
                headers={"content-type": "application/json"},
            )
            sent += 1
            expected = 413 if label == "over the size limit" else reply.status_code
            if not is_refusal(reply) or reply.status_code != expected:
                wrong.append((method, template, label, field, reply.status_code, reply.text[:160]))
    assert wrong == [], "\n".join(map(str, wrong))
    assert sent > 4 * len(routes_with_a_body(document))
    assert audit_entries(services) == before


def test_metacharacters__every_string_field_of_every_route__refused_or_stored_verbatim(
    api: httpx.Client, services: Services, world: World
) -> None:
    document = openapi()
    wrong: list[tuple[Any, ...]] = []
    stored = refused = 0
    for method, template in routes_with_a_body(document):
        valid = VALID[(method, template)]
        if valid is None:
            continue
        path = world.path(template)
        # Given a body the route accepts (so a refusal below is the field's doing)
        sanity = api.request(method, path, json=valid(next(_numbers)))
        assert sanity.status_code < 300, (method, template, sanity.text)
        schema = body_schema(document, method, template)
        for name, kind in string_fields(schema, document):
            field = resolved(schema["properties"][name], document)
            for payload in PAYLOADS:
                body = valid(next(_numbers))
                value: Any = {"text": payload, "list": [payload], "map": {payload: payload}}[kind]
                body[name] = value
                entries = audit_entries(services)

                # When the field holds the metacharacters
                reply = api.request(method, path, json=body)

                # Then a schema that rejects them means a 4xx that stored nothing
                case = (method, template, name, payload, reply.status_code, reply.text[:160])
                if reply.status_code >= 500:
                    wrong.append(case)
                elif reply.status_code >= 400:
                    refused += 1
                    if not is_refusal(reply) or audit_entries(services) != entries:
                        wrong.append((*case, "refused but not cleanly"))
                elif kind == "text" and not accepts(field, payload):
                    wrong.append((*case, "accepted what its schema rejects"))
                elif (method, template) not in EVALUATING:
                    # and free text is stored and returned byte for byte
                    stored += 1
                    shown = reply.json() if reply.content else None
                    if (method, template) in READ_BACK:
                        shown = api.get(READ_BACK[(method, template)](body)).json()
                    if not found_in(shown, payload):
                        wrong.append((*case, "not returned as sent"))
    assert wrong == [], "\n".join(map(str, wrong))
    assert stored > 0
    assert refused > 0


def test_console__metacharacters_in_names__rendered_escaped_never_interpreted(
    api: httpx.Client, services: Services, server_url: str
) -> None:
    # Given a feature and a company named with markup and template syntax
    name = '<script>alert("x")</script> {{7*7}} {% raw %}'
    feature = {"key": "hx_sso", "name": name, "type": "boolean"}
    assert api.post("/v1/features", json=feature).status_code == 201
    assert api.put("/v1/companies/hx_acme", json={"name": name}).status_code in (200, 201)
    services.console_users.create_user("ops@example.com", "correct horse battery staple")
    console = ConsoleClient(server_url)
    try:
        assert console.sign_in("ops@example.com").status_code == 303

        # When the console lists them
        pages = [console.get("/console/features"), console.get("/console/companies/hx_acme")]
    finally:
        console.close()

    # Then each page shows the name escaped, its template syntax as text
    for page in pages:
        assert page.status_code == 200
        assert "&lt;script&gt;alert(" in page.text
        assert "<script>alert(" not in page.text
        assert "{{7*7}}" in page.text
        assert "49" not in page.text.split("{{7*7}}")[0][-20:]
    assert orjson.loads(api.get("/v1/features/hx_sso").content)["name"] == name
