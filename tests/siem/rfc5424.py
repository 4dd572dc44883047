"""RFC 5424 (section 6) as regular expressions, to check what the sinks receive."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_PRINT = rb"[!-~]"
# SD-NAME: printable US-ASCII except '=', SP, ']' and '"'.
_SD_NAME = rb"[!#-<>-\\^-~]{1,32}"
# PARAM-VALUE: '"', '\' and ']' only escaped with a backslash.
_PARAM_VALUE = rb'(?:[^"\\\]]|\\["\\\]])*'
_SD_PARAM = _SD_NAME + rb'="' + _PARAM_VALUE + rb'"'
_SD_ELEMENT = rb"\[" + _SD_NAME + rb"(?: " + _SD_PARAM + rb")*\]"

SYSLOG_MSG = re.compile(
    rb"<(?P<pri>[0-9]{1,3})>(?P<version>[1-9][0-9]{0,2}) "
    rb"(?P<timestamp>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    rb"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})) "
    rb"(?P<hostname>" + _PRINT + rb"{1,255}) "
    rb"(?P<app_name>" + _PRINT + rb"{1,48}) "
    rb"(?P<procid>" + _PRINT + rb"{1,128}) "
    rb"(?P<msgid>" + _PRINT + rb"{1,32}) "
    rb"(?P<sd>-|(?:" + _SD_ELEMENT + rb")+)"
    rb"(?: (?P<msg>.*))?\Z", re.DOTALL)

_PARAM = re.compile(rb" (" + _SD_NAME + rb')="(' + _PARAM_VALUE + rb')"')
_UNESCAPE = re.compile(rb'\\(["\\\]])')
BOM = "\ufeff".encode()


@dataclass(frozen=True)
class Parsed:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd_id: str
    params: dict[str, str]
    document: dict[str, Any]


def parse(message: bytes) -> Parsed:
    """Check ``message`` against the grammar and take it apart (fails the test if it
    does not match)."""
    match = SYSLOG_MSG.match(message)
    assert match is not None, f"not RFC 5424: {message[:200]!r}"
    assert int(match["pri"]) <= 191 and match["version"] == b"1"
    sd = match["sd"]
    assert sd.count(b"[") - sd.count(b"\\[") >= 1
    sd_id = re.match(rb"\[(" + _SD_NAME + rb")", sd)
    assert sd_id is not None
    params = {name.decode(): _UNESCAPE.sub(rb"\1", value).decode()
              for name, value in _PARAM.findall(sd)}
    msg = match["msg"] or b""
    assert msg.startswith(BOM), "MSG in UTF-8 must start with the BOM"
    return Parsed(pri=int(match["pri"]), timestamp=match["timestamp"].decode(),
                  hostname=match["hostname"].decode(), app_name=match["app_name"].decode(),
                  procid=match["procid"].decode(), msgid=match["msgid"].decode(),
                  sd_id=sd_id[1].decode(), params=params,
                  document=json.loads(msg[len(BOM):].decode()))
