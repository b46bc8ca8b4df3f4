"""What every sandbox endpoint shares: JSON answers and errors, opaque cursors bound to the
request they were issued for, and query-string parsing with Metronome's 400s."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

# Metronome documents no default page size; 50 is a middle ground for clients that forget.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

Response = tuple[int, dict[str, str], bytes]

JSON_HEADERS = {"content-type": "application/json"}
_INTEGER = re.compile(r"-?[0-9]+")
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")


class BadRequest(Exception):
    pass


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return status, {**JSON_HEADERS, **(headers or {})}, body


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(status, {"message": message}, headers)


def encode_cursor(offset: int, filters_digest: str) -> str:
    raw = json.dumps({"o": offset, "f": filters_digest}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, filters_digest: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise BadRequest("next_page is not a valid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("next_page is not a valid cursor") from None
    if not isinstance(payload, dict):
        raise BadRequest("next_page is not a valid cursor")
    offset, digest = payload.get("o"), payload.get("f")
    if type(offset) is not int or offset < 0 or not isinstance(digest, str):
        raise BadRequest("next_page is not a valid cursor")
    if not hmac.compare_digest(digest, filters_digest):
        raise BadRequest("next_page was issued for different filters; send the same filters")
    return offset


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _INTEGER.fullmatch(value):
        raise BadRequest("limit must be an integer")
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def parse_query(query: str, known: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in known or value == "":
            continue
        if key in params:
            raise BadRequest(f"{key} was sent more than once; send one comma-separated value")
        params[key] = value
    return params


def parse_timestamp(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must be an RFC 3339 timestamp with a time zone")
    return parsed
