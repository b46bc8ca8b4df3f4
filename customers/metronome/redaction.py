"""Take anything token-like out of text from Metronome before it is logged, and tell an
answer that quotes the token whole (`answer_quotes_token`), which is not used at all.

Metronome's error messages are never shown to people (they see our own words), but operators
want them in the log, and an answer may quote the token: whole, cut short, in another case,
reversed, in rot13, spelt out with anything between its letters ("m-t-r-_-l-i-v-e",
invisible characters, accents), in full-width letters, or percent-, base64-, base32-, hex-
or backslash-escaped (\\u006d, \\u{6d}, \\x6d, \\155), compressed (zlib or gzip) inside
base64, base32 or hex, possibly inside one another. Here any run of 8 or more characters of
the token (or of it reversed, or of either in rot13), compared case-folded, is replaced, in
the text and in every encoded segment of it; a text that still mentions the token after
decoding, or once only its letters and digits are kept (a form that cannot be cut out piece
by piece, such as HTML entities or "m-t-r-_-l-i-v-e"), is withheld whole.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import html
import re
import unicodedata
import urllib.parse
import zlib
from dataclasses import dataclass

REDACTED = "[redacted]"
WITHHELD = "[message withheld: it quoted the API token]"
# A shorter run of the token's characters could be chance; 8 of a random token are not.
MIN_RUN = 8
# Encodings inside encodings, a few levels deep.
MAX_DEPTH = 3
# A log line needs no more of a message than this (and the search stays cheap).
MAX_TEXT = 2000
# Characters searched for the token, over every decoding of every level, per message: an
# ordinary message costs a few thousand. Past it the message is treated as quoting the
# token (withheld): a crafted one (base64 of hex of base64, 2,000 characters) decodes
# into hundreds of readings, 1.1 s of a worker's CPU per answer without a bound.
MAX_WORK = 100_000

# Starting only where a run of URL characters starts: tried from every position of a long
# run with no escape in it, the search was quadratic (most of a crafted message's cost).
_PERCENT = re.compile(
    r"(?<![0-9A-Za-z._~+\-])(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~+\-])*%[0-9A-Fa-f]{2}[%0-9A-Za-z._~+\-]*"
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{12,}={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){8,}")
_BASE32 = re.compile(r"[A-Za-z2-7]{13,}={0,6}")
_SEGMENTS = (_PERCENT, _BASE64, _HEX, _BASE32)
# What is not a letter or digit of the token, once full-width and accented letters are taken
# apart (NFKD: "ｍ" is "m", "ḿ" is "m" and an accent): whatever stands between its letters
# ("m-t-r", "m t r", invisible characters, UTF-16's NULs) still lets a reader take it out.
_NOT_LETTER_OR_DIGIT = re.compile(r"[^A-Za-z0-9]+")
# \u006d, \u{6d}, \x6d, \155: JSON's, JavaScript's and Rust's, C's escapes of one character.
_ESCAPE = re.compile(
    r"\\u([0-9A-Fa-f]{4})|\\u\{0*([0-9A-Fa-f]{1,6})\}|\\x([0-9A-Fa-f]{2})|\\([0-7]{3})"
)


class _OutOfWork(Exception):
    """The message took more searching than MAX_WORK: treated as quoting the token."""


class _Work:
    def __init__(self) -> None:
        self.left = MAX_WORK
        # Each text searched, at the shallowest depth: found again (the same ID in each
        # reading of the whole message), it was searched as deep already and held no token.
        self.searched: dict[str, int] = {}
        # Each segment's readings, decoded (and decompressed, and charged) once: a segment
        # recurs in each reading of the whole message (percent, HTML and backslash escapes).
        self.decoded: dict[str, list[str]] = {}

    def spend(self, text: str) -> None:
        self.left -= len(text)
        if self.left < 0:
            raise _OutOfWork


def redact(text: str, token: str) -> str:
    """`text` with every token-like part replaced by [redacted] (or WITHHELD altogether)."""
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    if not token or not text:
        return text
    grams = _Grams.of(token)
    work = _Work()
    try:
        redacted = text
        for pattern in _SEGMENTS:
            redacted = pattern.sub(
                lambda match: REDACTED if _segment_mentions(match[0], grams, work) else match[0],
                redacted,
            )
        redacted = _cut_runs(redacted, grams.plain)
        return WITHHELD if _mentions(redacted, grams, 0, work) else redacted
    except _OutOfWork:
        return WITHHELD


def mentions_token(text: str, token: str, *, levels: int = MAX_DEPTH) -> bool:
    """Whether `text` holds 8 or more characters of the token in any of the forms above (or
    takes more than MAX_WORK to tell), looking `levels` encodings deep."""
    if not token:
        return False
    try:
        return _mentions(text, _Grams.of(token), MAX_DEPTH - levels, _Work())
    except _OutOfWork:
        return True


# JSON's escapes that can spell a character of a token (ASCII) in an answer: \u0074 and \/.
# The others (\" and \n, or \u00e9 for a name's accent) cannot: an answer holding only those
# is not rewritten (on a page of 100 customers, 35 µs of the check's 74 µs).
_JSON_ESCAPE = re.compile(rb"\\(?:u(00[0-7][0-9A-Fa-f])|/)")


def answer_quotes_token(content: bytes, folded_token: bytes) -> bool:
    """Whether an answer's body holds the whole token (`folded_token`: its bytes in lower
    case), in any case, its characters written plainly or as JSON escapes. What Metronome
    answers reaches pages, CSV files and the index, and the token must reach none of them:
    every answer is checked before it is read (about 40 µs for a 50 KB page). Forms a log
    line is also screened for (reversed, base64, one letter per field...) are left out: an
    API echoing the request back quotes the token as it was sent."""
    if not folded_token:
        return False
    if folded_token in content.lower():
        return True
    if _JSON_ESCAPE.search(content) is None:
        return False
    return folded_token in _JSON_ESCAPE.sub(_json_unescaped, content).lower()


def _json_unescaped(match: re.Match[bytes]) -> bytes:
    return b"/" if match[1] is None else bytes([int(match[1], 16)])


def _runs(token: str) -> frozenset[str]:
    """Every run of MIN_RUN characters of the token and of it reversed, each also in rot13,
    case-folded (the whole token when it is shorter)."""
    size = min(MIN_RUN, len(token))
    folded = token.casefold()
    both_ways = (folded, folded[::-1])
    spellings = (*both_ways, *(codecs.encode(spelling, "rot13") for spelling in both_ways))
    return frozenset(
        spelling[start : start + size]
        for spelling in spellings
        for start in range(len(spelling) - size + 1)
    )


def _letters_and_digits(text: str) -> str:
    return _NOT_LETTER_OR_DIGIT.sub("", unicodedata.normalize("NFKD", text))


@dataclass(frozen=True, slots=True)
class _Grams:
    """The token's runs as written, and as only its letters and digits."""

    plain: frozenset[str]
    squeezed: frozenset[str]

    @classmethod
    @functools.lru_cache(maxsize=4)  # the one token, every message and cursor
    def of(cls, token: str) -> _Grams:
        squeezed = _letters_and_digits(token)
        return cls(_runs(token), _runs(squeezed) if squeezed else frozenset())


def _size(grams: frozenset[str]) -> int:
    return len(next(iter(grams)))


def _has_run(text: str, grams: frozenset[str]) -> bool:
    size = _size(grams)
    folded = text.casefold()
    return any(folded[start : start + size] in grams for start in range(len(folded) - size + 1))


def _mentions(text: str, grams: _Grams, depth: int, work: _Work) -> bool:
    if work.searched.get(text, MAX_DEPTH + 1) <= depth:
        return False
    work.searched[text] = depth
    work.spend(text)
    # The letters and digits alone are only looked at, never searched for encoded segments:
    # read as one long run of base64, they made an ordinary message cost 4x.
    if _has_run(text, grams.plain):
        return True
    if grams.squeezed and _has_run(_letters_and_digits(text), grams.squeezed):
        return True
    if depth >= MAX_DEPTH:
        return False
    # Character escapes (HTML's, and \u or \x) read in one go: each reading of the whole
    # text is searched again, to MAX_DEPTH, and a third one made ordinary messages with an
    # accent and an ampersand cost half as much again.
    whole = {urllib.parse.unquote_plus(text), html.unescape(_unescaped(text))} - {text}
    segments = [m[0] for pattern in _SEGMENTS for m in pattern.finditer(text)]
    candidates = [*whole, *(decoded for s in segments for decoded in _decode_all(s, work))]
    return any(_mentions(candidate, grams, depth + 1, work) for candidate in candidates)


def _unescaped(text: str) -> str:
    return _ESCAPE.sub(_character, text)


def _character(match: re.Match[str]) -> str:
    hexadecimal = match[1] or match[2] or match[3]
    code = int(hexadecimal, 16) if hexadecimal else int(match[4], 8)
    return chr(code) if code <= 0x10FFFF else match[0]  # past Unicode: no character, kept


def _segment_mentions(segment: str, grams: _Grams, work: _Work) -> bool:
    return any(_mentions(reading, grams, 1, work) for reading in _decode_all(segment, work))


def _decode_all(segment: str, work: _Work) -> list[str]:
    """Every reading of `segment` as percent-, base64 (standard or URL-safe, at any of the
    four alignments), hex or base32 encoding, and of the zlib or gzip streams those hold;
    what does not decode is left out."""
    if segment not in work.decoded:
        work.decoded[segment] = _decoded(segment, work)
    return work.decoded[segment]


def _decoded(segment: str, work: _Work) -> list[str]:
    readings = []
    if "%" in segment:
        readings.append(urllib.parse.unquote_plus(segment))
    decoded: list[bytes] = []
    raw = segment.rstrip("=")
    for skip in range(4):
        body = raw[skip:]
        body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
        padded = body + "=" * (-len(body) % 4)
        for alphabet in (b"+/", b"-_"):
            try:
                decoded.append(base64.b64decode(padded, altchars=alphabet, validate=True))
            except (binascii.Error, ValueError):
                continue
    if len(segment) % 2 == 0 and _HEX.fullmatch(segment):
        decoded.append(bytes.fromhex(segment))
    if _BASE32.fullmatch(segment):
        decoded += _base32_readings(segment.rstrip("=").upper())
    for data in dict.fromkeys(decoded):  # each once: both alphabets often read alike
        readings.append(data.decode("latin-1"))
        readings += _inflated(data, work)
    return readings


# Where a compressed stream may start, at any byte (after other bytes, or after another
# stream): zlib's header (deflate, a window of at most 32 KB: a first byte of 0x08, 0x18 ...
# 0x78, the pair a multiple of 31) or gzip's magic number.
_STREAM_START = re.compile(rb"(?=[\x08\x18\x28\x38\x48\x58\x68\x78].|\x1f\x8b)", re.DOTALL)
_GZIP_MAGIC = b"\x1f\x8b"
# A stream is decompressed this far at most: a log line needs no more, and a bomb stops here.
MAX_INFLATED = MAX_TEXT * 4


def _inflated(data: bytes, work: _Work) -> list[str]:
    """Every zlib or gzip stream in `data`, decompressed, each charged to `work` (its
    search is charged again when the reading is searched). A stream that goes on past
    MAX_INFLATED raises _OutOfWork (withheld): what follows could be the token. Random
    bytes that look like a header rarely decompress at all (88 in 100,000 tries), and none
    that far."""
    readings = []
    for match in _STREAM_START.finditer(data):
        start = match.start()
        head = data[start : start + 2]
        if head != _GZIP_MAGIC and int.from_bytes(head, "big") % 31:
            continue
        inflater = zlib.decompressobj(32 + 15)  # zlib or gzip, told apart by the header
        try:
            output = inflater.decompress(data[start:], MAX_INFLATED)
        except zlib.error:
            continue
        if inflater.unconsumed_tail:
            raise _OutOfWork
        if output:
            text = output.decode("latin-1")
            work.spend(text)
            readings.append(text)
    return readings


# A last group of 1, 3 or 6 base32 characters encodes no whole byte: cut to the length below.
_BASE32_WHOLE = {0: 0, 1: 0, 2: 2, 3: 2, 4: 4, 5: 5, 6: 5, 7: 7}


def _base32_readings(raw: str) -> list[bytes]:
    """`raw` read as base32 from each of the eight alignments, a cut-off end dropped."""
    readings = []
    for skip in range(8):
        body = raw[skip:]
        body = body[: len(body) - len(body) % 8 + _BASE32_WHOLE[len(body) % 8]]
        if len(body) < 8:
            break
        try:
            decoded = base64.b32decode(body + "=" * (-len(body) % 8))
        except (binascii.Error, ValueError):
            continue
        readings.append(decoded)
    return readings


def _cut_runs(text: str, grams: frozenset[str]) -> str:
    """Replace each stretch of text covered by runs of the token's characters."""
    size = _size(grams)
    folded = text.casefold()
    if len(folded) != len(text):  # case folding changed the length (ß -> ss): be safe
        return WITHHELD if _has_run(text, grams) else text
    covered = [False] * len(text)
    for start in range(len(text) - size + 1):
        if folded[start : start + size] in grams:
            covered[start : start + size] = [True] * size
    pieces, index = [], 0
    while index < len(text):
        if covered[index]:
            while index < len(text) and covered[index]:
                index += 1
            pieces.append(REDACTED)
        else:
            pieces.append(text[index])
            index += 1
    return "".join(pieces)
