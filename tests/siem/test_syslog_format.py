"""RFC 5424 messages of audit events: header, structured data and its escaping, framing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from idgov.siem.syslog import escape_param, format_message, frame, severity_of, timestamp
from tests.siem.rfc5424 import SYSLOG_MSG, parse


def _document(**overrides: object) -> dict[str, object]:
    document: dict[str, object] = {
        "seq": 17, "id": "0b5e3c1a-4a8e-4a57-9d0e-2f1c6e9f3a10",
        "occurred_at": "2026-01-15T09:00:00.250000+00:00",
        "actor": {"type": "identity", "id": "42", "name": 'Eve "the" \\admin] Ünal'},
        "action": "assignment.grant",
        "object": {"type": "assignment", "id": "a]b"},
        "before": None, "after": {"entitlement_id": "e1", "note": "[x] \"y\""},
        "context": None, "privileged": True, "prev_hash": "0" * 64, "hash": "ab" * 32,
        "key_id": "k1", "signature": None,
    }
    document.update(overrides)
    return document


def test_message_matches_the_rfc5424_grammar_and_carries_the_event() -> None:
    document = _document()
    message = format_message(document, app_name="idgov", hostname="gov-1.example.com",
                             procid=4242)
    parsed = parse(message)
    assert (parsed.pri, parsed.timestamp, parsed.hostname, parsed.app_name, parsed.procid,
            parsed.msgid, parsed.sd_id) == (
        85, "2026-01-15T09:00:00.250000Z", "gov-1.example.com", "idgov", "4242",
        "assignment.grant", "idgov@32473")
    assert parsed.params == {
        "seq": "17", "id": "0b5e3c1a-4a8e-4a57-9d0e-2f1c6e9f3a10",
        "action": "assignment.grant", "actor_type": "identity", "actor_id": "42",
        "actor_name": 'Eve "the" \\admin] Ünal', "object_type": "assignment",
        "object_id": "a]b", "privileged": "true", "hash": "ab" * 32,
    }
    assert parsed.document == document


def test_sd_param_values_escape_quote_backslash_and_bracket() -> None:
    assert escape_param('a"b\\c]d[e=f') == 'a\\"b\\\\c\\]d[e=f'
    message = format_message(_document(), app_name="idgov", hostname="h", procid=1)
    sd = message.split(b" \xef\xbb\xbf", 1)[0]
    assert b'actor_name="Eve \\"the\\" \\\\admin\\] \xc3\x9cnal"' in sd
    assert b'object_id="a\\]b"' in sd


def test_absent_values_are_left_out_and_header_fields_stay_printable() -> None:
    document = _document(actor={"type": "system", "id": None, "name": "periodic jobs"},
                         action="application.credentials_reencrypt", privileged=False)
    parsed = parse(format_message(document, app_name="idgov", hostname="my host\u00e9",
                                  procid=7))
    assert "actor_id" not in parsed.params
    assert parsed.params["actor_name"] == "periodic jobs"
    assert parsed.params["privileged"] == "false"
    # MSGID holds at most 32 characters; the whole action is in the structured data.
    assert parsed.msgid == "application.credentials_reencryp"
    assert parsed.params["action"] == "application.credentials_reencrypt"
    assert parsed.hostname == "my_host_"


@pytest.mark.parametrize(("action", "privileged", "severity"), [
    ("thing.update", False, 6),
    ("identity.update", False, 6),
    ("request.create", False, 6),
    ("identity.update", True, 5),
    ("assignment.grant", False, 5),
    ("assignment.revoke", False, 5),
    ("role.add_entitlement", False, 5),
    ("service_role.grant", False, 5),
    ("api_token.revoke", False, 5),
    ("siem_sink.update", False, 5),
    ("identity.terminate", False, 5),
    ("target.breaker_open", False, 4),
    ("provisioning.rolled_back", False, 4),
    ("campaign.launch_failed", False, 4),
])
def test_severity_follows_the_action(action: str, privileged: bool, severity: int) -> None:
    assert severity_of(action, privileged=privileged) == severity
    parsed = parse(format_message(_document(action=action, privileged=privileged),
                                  app_name="idgov", hostname="h", procid=1))
    assert parsed.pri == 10 * 8 + severity  # authpriv


def test_timestamp_is_utc_with_microseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert timestamp(datetime(2026, 1, 15, 10, 0, 0, 5, tzinfo=paris)) == \
        "2026-01-15T09:00:00.000005Z"
    assert timestamp(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)) == "2026-03-01T09:00:00.000000Z"


def test_octet_counting_frames_count_bytes_not_characters() -> None:
    assert frame(b"hello") == b"5 hello"
    assert frame("é".encode()) == b"2 \xc3\xa9"
    message = format_message(_document(), app_name="idgov", hostname="h", procid=1)
    length, rest = frame(message).split(b" ", 1)
    assert int(length) == len(rest) == len(message)


def test_grammar_check_refuses_unescaped_values() -> None:
    # The regex the receiver checks with is strict: the same message with a raw ']' fails.
    good = format_message(_document(), app_name="idgov", hostname="h", procid=1)
    assert SYSLOG_MSG.match(good)
    assert SYSLOG_MSG.match(good.replace(b'a\\]b', b"a]b")) is None
    assert json.loads(good.split(b"\xef\xbb\xbf", 1)[1])["seq"] == 17
