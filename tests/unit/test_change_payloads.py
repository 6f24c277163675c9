"""Change notes as they travel between processes: split under PostgreSQL's NOTIFY limit, read
back whole, and anything else refused."""

from __future__ import annotations

import pytest

from tierkit.server.services.change_relay import MAX_PAYLOAD_BYTES, decode_notes, encode_notes
from tierkit.server.services.changes import ChangeKind, ChangeNote, staged_notes, staging


def test_change_payloads__thousand_long_company_keys__split_under_the_limit_and_read_back() -> None:
    notes = [
        ChangeNote("env_1", ChangeKind.USAGE, company=f"{index:04d}" + "é/x" * 80)
        for index in range(1000)
    ]

    payloads = encode_notes("origin1", notes)

    assert len(payloads) > 1
    assert all(len(payload.encode()) <= MAX_PAYLOAD_BYTES for payload in payloads)
    decoded = [decode_notes(payload) for payload in payloads]
    assert {origin for origin, _ in decoded} == {"origin1"}
    assert [note for _, part in decoded for note in part] == notes


def test_change_payloads__repeated_notes__sent_once() -> None:
    note = ChangeNote("env_1", ChangeKind.USER, user="u1")

    (payload,) = encode_notes("o", [note, note, ChangeNote("env_1", ChangeKind.CATALOG)])

    assert decode_notes(payload) == ("o", [note, ChangeNote("env_1", ChangeKind.CATALOG)])


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[]", '{"origin": "o"}', '{"origin": 1, "notes": []}',
     '{"origin": "o", "notes": [["env", "no_such_kind", null, null]]}'],
)  # fmt: skip
def test_change_payloads__not_ours__refused(payload: str) -> None:
    with pytest.raises(ValueError, match="not a change payload"):
        decode_notes(payload)


def test_staging__nested_blocks__notes_of_every_enclosing_block_once() -> None:
    outer = ChangeNote("env_1", ChangeKind.CATALOG)
    inner = ChangeNote("env_1", ChangeKind.OVERRIDE, company="acme")

    with staging([outer]) as added:
        with staging([inner, outer]):
            assert staged_notes() == [outer, inner]
        added.append(inner)
        assert staged_notes() == [outer, inner]
    assert staged_notes() == []
