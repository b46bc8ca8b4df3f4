"""No token in any encoding reaches a log line (customers/metronome/redaction.py): one test per
encoding, each with the token whole and cut short."""

import base64
import codecs
import gzip
import urllib.parse
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.metronome.redaction import (
    REDACTED,
    WITHHELD,
    answer_quotes_token,
    mentions_token,
    redact,
)

TOKEN = "mtr_live_9fQ2xLk7Vb3nPw8RzT4yHs6JdC1gUe5A"
CUT = TOKEN[3:-1]  # its last character cut, and a prefix gone


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b64z(text: str, *, wbits: int) -> str:
    compressor = zlib.compressobj(wbits=wbits)
    return base64.b64encode(compressor.compress(text.encode()) + compressor.flush()).decode()


def b32(text: str) -> str:
    return base64.b32encode(text.encode()).decode().rstrip("=")


ENCODINGS = {
    "plain": lambda text: text,
    "upper case": str.upper,
    "lower case": str.lower,
    "reversed": lambda text: text[::-1],
    "percent": lambda text: urllib.parse.quote(text, safe=""),
    "percent, every byte": lambda text: "".join(f"%{byte:02X}" for byte in text.encode()),
    "percent twice": lambda text: urllib.parse.quote(urllib.parse.quote(text, safe=""), safe=""),
    "base64": b64,
    "base64 url-safe": lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("="),
    "base64 of a sentence": lambda text: b64(f"Authorization: Bearer {text}"),
    "hex": lambda text: text.encode().hex(),
    "hex upper case": lambda text: text.encode().hex().upper(),
    "base64 of hex": lambda text: b64(text.encode().hex()),
    "html entities": lambda text: "".join(f"&#x{ord(c):x};" for c in text),
    "spaced out": " ".join,
    "one character a line": "\n".join,
    "zero-width spaces between": "\u200b".join,
    "UTF-16 read as bytes": lambda text: text.encode("utf-16-le").decode("latin-1"),
    "spaced out, percent-encoded": lambda text: urllib.parse.quote(" ".join(text), safe=""),
    "a dash between letters": "-".join,
    "chunks of 7 between dots": lambda text: ".".join(
        text[start : start + 7] for start in range(0, len(text), 7)
    ),
    "invisible separators between": "\u2063".join,
    "an accent on every letter": lambda text: "".join(c + "\u0301" for c in text),
    "full-width letters": lambda text: "".join(
        chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    ),
    "base32": lambda text: base64.b32encode(text.encode()).decode(),
    "base32 without padding": lambda text: base64.b32encode(text.encode()).decode().rstrip("="),
    "base32 in a link's path": lambda text: "https://api.example/keys/" + b32(text),
    "base32 after a dash": lambda text: "key-" + b32(text),
    "base32 after a digit": lambda text: "1" + b32(text),
    "base32 from its fourth character": lambda text: b32(text)[3:],
    "base32 cut to 41 characters": lambda text: b32(text)[:41],
    "base32 cut to 43 characters": lambda text: b32(text)[:43],
    "JSON escapes": lambda text: "".join(f"\\u{ord(c):04x}" for c in text),
    "hex escapes": lambda text: "".join(f"\\x{ord(c):02x}" for c in text),
    "JavaScript and Rust escapes": lambda text: "".join(f"\\u{{{ord(c):x}}}" for c in text),
    "octal escapes": lambda text: "".join(f"\\{ord(c):03o}" for c in text),
    "rot13": lambda text: codecs.encode(text, "rot13"),
    "rot13, reversed": lambda text: codecs.encode(text[::-1], "rot13"),
    "zlib, then base64": lambda text: base64.b64encode(zlib.compress(text.encode())).decode(),
    "gzip, then base64": lambda text: base64.b64encode(gzip.compress(text.encode())).decode(),
    "zlib, then hex": lambda text: zlib.compress(f"Bearer {text}".encode()).hex(),
    "zlib, then base32": lambda text: base64.b32encode(zlib.compress(text.encode())).decode(),
    "zlib with a small window, then base64": lambda text: b64z(text, wbits=10),
    "zlib after other bytes, then base64": lambda text: base64.b64encode(
        b"key" + zlib.compress(text.encode())
    ).decode(),
    "zlib after a hex prefix": lambda text: "cafe" + zlib.compress(text.encode()).hex(),
    "zlib after another zlib stream, then base64": lambda text: base64.b64encode(
        zlib.compress(b"Authorization failed") + zlib.compress(text.encode())
    ).decode(),
    "gzip, second member, then base64": lambda text: base64.b64encode(
        gzip.compress(b"Authorization failed") + gzip.compress(text.encode())
    ).decode(),
    "escapes with leading zeros": lambda text: "".join(f"\\u{{{ord(c):08x}}}" for c in text),
}


@pytest.mark.parametrize("encoding", ENCODINGS, ids=list(ENCODINGS))
@pytest.mark.parametrize("secret", [TOKEN, CUT], ids=["whole", "cut short"])
def test_the_token_in_each_encoding_is_taken_out(encoding, secret):
    encoded = ENCODINGS[encoding](secret)
    message = f"Invalid token {encoded} for this environment"

    logged = redact(message, TOKEN)

    assert mentions_token(message, TOKEN)
    assert not mentions_token(logged, TOKEN), logged
    assert encoded not in logged
    assert logged in (WITHHELD,) or (REDACTED in logged and logged.startswith("Invalid token"))


def test_every_eight_character_run_of_the_token_is_taken_out_and_seven_are_not():
    for start in range(len(TOKEN) - 8 + 1):
        run = TOKEN[start : start + 8]
        assert redact(f"x {run} y", TOKEN) == f"x {REDACTED} y"
    assert redact(f"x {TOKEN[:7]} y", TOKEN) == f"x {TOKEN[:7]} y"


def test_a_message_without_the_token_is_kept_as_it_is():
    message = "customer_id must be a UUID (got 'abc'); see https://docs.metronome.com/x?a=%20b"
    assert redact(message, TOKEN) == message
    assert redact("aGVsbG8gd29ybGQgaGVsbG8=", TOKEN) == "aGVsbG8gd29ybGQgaGVsbG8="


def test_a_compression_bomb_is_read_only_as_far_as_a_log_line_needs_and_withheld():
    # A megabyte of zeros compresses to about a kilobyte. Decompressed whole for every
    # reading, one crafted message would cost a worker megabytes and seconds; read only as
    # far as MAX_INFLATED, whatever follows could hold the token: withheld.
    from customers.metronome import redaction

    compressed = zlib.compress(b"0" * 1_000_000)
    work = redaction._Work()
    with pytest.raises(redaction._OutOfWork):
        redaction._inflated(compressed, work)
    assert redaction.MAX_WORK - work.left == 0  # nothing more was read than the cap
    bomb = base64.b64encode(compressed).decode()[: redaction.MAX_TEXT - 40]
    assert redact(f"bad cursor {bomb}", TOKEN) == WITHHELD
    # A stream that ends within the cap is read and charged as searched text.
    assert redaction._inflated(zlib.compress(b"0" * 1000), work) == ["0" * 1000]
    assert redaction.MAX_WORK - work.left == 1000


def test_ordinary_compressed_text_is_logged_whole():
    message = "bad cursor " + base64.b64encode(zlib.compress(b"page=7;size=100")).decode()
    assert redact(message, TOKEN) == message


def test_escapes_past_unicode_are_kept_as_written():
    message = "bad value \\u{110000} and \\u{10FFFF}, \\777"
    assert redact(message, TOKEN) == message


@given(st.text(max_size=200), st.integers(0, len(TOKEN) - 8), st.integers(8, len(TOKEN)))
def test_any_run_of_eight_or_more_inside_any_text_is_taken_out(text, start, length):
    run = TOKEN[start : start + length]
    if len(run) < 8:
        return
    logged = redact(f"{text}{run}{text}", TOKEN)
    assert not mentions_token(logged, TOKEN)


def test_a_message_that_takes_too_much_searching_is_withheld_not_searched_for_ever():
    # Base64 of hex of base64: each level decodes into a dozen readings of the next, hundreds
    # in all (1.1 s of CPU a message before the search had a bound).
    from customers.metronome import redaction

    noise = base64.b64encode(bytes((n * 37 + 11) % 256 for n in range(400))).decode()
    crafted = b64(noise.encode().hex())[:2000]
    searched: list[int] = []
    spend = redaction._Work.spend

    def counted(work: redaction._Work, text: str) -> None:
        searched.append(len(text))
        spend(work, text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redaction._Work, "spend", counted)
        # Each reading searched once however often it recurs: within the bound, whole.
        assert redact(crafted, TOKEN) == crafted
        assert sum(searched) < redaction.MAX_WORK / 2
        # A bound it passes still stops it, withheld.
        searched.clear()
        patch.setattr(redaction, "MAX_WORK", 5000)
        assert redact(crafted, TOKEN) == WITHHELD
    assert 5000 < sum(searched) <= 5000 + 2000


def test_a_long_list_of_ids_with_an_accent_and_an_ampersand_is_logged_whole():
    # Each reading of the whole message (percent, HTML and backslash escapes) holds the same
    # 100 IDs: searched once each, not once a reading (the message was withheld).
    ids = [f"001Hs{n:05d}KTOhSKIQ{n % 10}" for n in range(100)]
    message = ("Unknown IDs (caf\\u00e9 &amp; co, 2026-12-07T10:00:00+00:00): " + ", ".join(ids))[
        :2000
    ]
    assert redact(message, TOKEN) == message


def test_an_ordinary_long_message_is_searched_whole_within_the_bound():
    cursor = b64("page=7;customer=0c5e4f3a-3f7c-4b8e-9a8e-2f4a1c9d7b6e;" * 6)
    message = (f"Invalid next_page cursor {cursor}; request 9d1c " * 5)[:1900]
    assert redact(message, TOKEN) == message
    with_token = redact(message + " " + TOKEN, TOKEN)  # still found when there
    assert with_token == message + " " + REDACTED


# --- An answer that quotes the token whole --------------------------------------------------

FOLDED = TOKEN.encode().lower()


def _spelt(token: str, ways: list[int]) -> str:
    """The token inside a JSON string, each character as `ways` says: as it is, in upper or
    lower case, or as a JSON escape with upper- or lower-case hex digits."""
    spellings = (
        lambda c: c,
        str.upper,
        str.lower,
        lambda c: f"\\u{ord(c):04x}",
        lambda c: f"\\u{ord(c):04X}",
    )
    return "".join(spellings[way % len(spellings)](c) for c, way in zip(token, ways, strict=True))


@given(st.lists(st.integers(0, 4), min_size=len(TOKEN), max_size=len(TOKEN)), st.text())
def test_an_answer_holding_the_token_however_its_json_spells_it_is_told(ways, around):
    body = f'{{"data": [{{"name": {_quoted(around)}, "notes": "x {_spelt(TOKEN, ways)} y"}}]}}'
    assert answer_quotes_token(body.encode(), FOLDED)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"name": "Acme \\"Quoted\\" \\u00e9\\/x", "next_page": null}]}',
        f'{{"name": "{TOKEN[:-1]}"}}'.encode(),  # all but its last character
        f'{{"name": "{TOKEN[:20]}", "other": "{TOKEN[20:]}"}}'.encode(),  # split in two
        b"",
    ],
)
def test_an_answer_without_the_whole_token_is_not_told(body):
    assert not answer_quotes_token(body, FOLDED)


def test_without_a_token_no_answer_is_told():
    assert not answer_quotes_token(b'{"name": ""}', b"")
