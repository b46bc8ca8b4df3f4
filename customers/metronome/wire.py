"""Reading Metronome's answers, which are untrusted input: the JSON of a body (bounded
nesting, no lone surrogates) and the checked readers every wire type is built with. Each
reader raises TypeError or ValueError on a value of the wrong shape; the caller turns that
into a `MalformedResponse` with its own message.

Reference: ../shared/metronome-api.md for the wire format."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from customers.metronome.errors import MalformedResponse

# Strings that hold a UTF-16 surrogate, escaped (`\ud800`) or raw (ED A0..BF ..): only such
# an answer can carry a lone surrogate, which no page or file can encode.
_SURROGATE_IN_JSON = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def read_number(value: object) -> float:
    # bool is an int subclass, and NaN or infinity is no amount; nor is an integer past
    # what a float holds (JSON allows 10**400), on which isfinite() and float() raise
    # OverflowError.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a finite number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise TypeError("expected a finite number, got one too large") from None
    if not math.isfinite(number):
        raise TypeError(f"expected a finite number, got {number}")
    return number


def read_optional_text(value: object) -> str | None:
    return None if value is None else read_text(value)


def read_text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# These run for every customer a sync writes: one loop per collection, not one call per
# string, roughly halves `from_wire`'s time (see bench/README.md).
# `Any` rather than `cast()`, a function call per use at run time: the loops are the check.
def read_texts(values: Sequence[Any]) -> tuple[str, ...]:
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
    return tuple(values)


def read_text_mapping(mapping: Mapping[Any, Any]) -> dict[str, str]:
    for key, value in mapping.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            raise TypeError(f"expected strings, got {type(key).__name__}: {type(value).__name__}")
    return dict(mapping)


def read_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp string, got {type(value).__name__}")
    if value[-1:] == "z":  # RFC 3339 allows a lowercase Z; Python 3.11 does not
        value = value[:-1] + "Z"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    if parsed.year in (1, 9999):
        # At the ends of the calendar a time zone can push it out of range: every page and
        # file shows times in UTC, so one that has no UTC is as unreadable as garbage.
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp out of range in UTC") from None
    return parsed


def read_optional_datetime(value: object) -> datetime | None:
    return None if value is None else read_datetime(value)


def parse_json(content: bytes) -> object:
    """The JSON of an answer, or MalformedResponse: never RecursionError from absurd nesting,
    never a lone surrogate that would break the page's or the file's encoding. UTF-8 only,
    as JSON on the wire must be: `json.loads` would also take UTF-16 and UTF-32, which the
    check for the API token (`redaction.answer_quotes_token`) does not read."""
    try:
        data = json.loads(content.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogatepass"))
    except RecursionError:
        raise MalformedResponse(
            "Metronome sent something the dashboard could not read (nested too deeply). "
            "If this keeps happening, tell the dashboard's developers."
        ) from None
    except ValueError:
        raise MalformedResponse(
            "Metronome sent a response that is not JSON. Try again in a minute."
        ) from None
    # Byte searches first (each much faster than the regex): most pages have none of these.
    maybe_surrogate = b"\\ud" in content or b"\\uD" in content or b"\xed" in content
    if maybe_surrogate and _SURROGATE_IN_JSON.search(content):
        data = replace_lone_surrogates(data)
    return data


def replace_lone_surrogates(value: object) -> object:
    """Each lone surrogate becomes U+FFFD, the replacement character people recognise."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            replace_lone_surrogates(key): replace_lone_surrogates(item)
            for key, item in value.items()
        }
    return value
