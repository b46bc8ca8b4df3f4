"""Seeded, deterministic customer data for the sandbox, in Metronome's wire format.

The data is meant to look like a real B2B SaaS company's customer list, warts included,
because the dashboard, its CSV export and its tests must cope with everything the real API
can send: non-ASCII and punctuation-heavy names, optional keys that are absent rather than
null, Salesforce IDs shared by an archived record and its replacement and stored in either
their 18- or 15-character form, and custom-field values that a spreadsheet would execute as
formulas.

Everything comes from `random.Random(seed)` (and one side stream seeded from it), so a seed
always yields the same list (no global random, no uuid4, no wall clock).
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import time
import unicodedata
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_SEED = 20261126
DEFAULT_COUNT = 5000

# Fixed bounds rather than "now", so the same seed gives the same timestamps forever.
_START_MS = 1_546_300_800_000  # 2019-01-01T00:00:00Z
_END_MS = 1_795_132_800_000  # 2026-11-20T00:00:00Z
_SPAN_MS = _END_MS - _START_MS

_ARCHIVED_SHARE = 0.10
# Of the active customers, how many omit the `archived_at` key instead of sending null:
# the spec's own examples leave it out, so clients must accept both.
_ACTIVE_ABSENT_ARCHIVED_AT = 0.30
# Accounts without the billable-status feature don't send the key at all.
_ABSENT_BILLABLE_STATUS = 0.15
_HAS_SALESFORCE_ID = 0.85
# Of the customers with a Salesforce ID, how many store its 15-character form (the one
# Salesforce reports and formula fields give) rather than the 18-character one.
_SALESFORCE_15_CHARACTER_FORM = 0.15
# Chance that a new active customer with a Salesforce ID replaces an earlier archived one
# and so shares its Salesforce ID (and name). Tuned so about 1 % of customers share an ID.
_REPLACES_ARCHIVED = 0.0065
_EMPTY_CUSTOM_FIELDS = 0.10
_SPECIAL_NAME = 0.04

_PREFIXES = (
    "Northwind", "Acme", "Globex", "Initech", "Contoso", "Fabrikam", "Blue Harbor",
    "Red Maple", "Silver Birch", "Granite", "Evergreen", "Bright Path", "Summit", "Cobalt",
    "Lumen", "Nimbus", "Quantum", "Vertex", "Pioneer", "Atlas", "Orbit", "Helix", "Juniper",
    "Falcon", "Kestrel", "Meridian", "Harbor", "Riverbend", "Copper", "Sierra", "Polar",
    "Bluebird", "Tidewater", "Ironclad", "Oakridge", "Lighthouse", "Brightwave",
    "Clearwater", "Starling", "Redwood", "Tangent", "Parallax", "Zenith", "Arcadia",
    "Beacon", "Cascade", "Driftwood", "Ember", "Foxglove", "Greenfield", "Highland",
    "Indigo", "Keystone", "Lakeshore", "Maplewood", "Nova", "Onyx", "Prairie", "Quill",
    "Rainier", "Sable", "Trident", "Upland", "Valiant", "Willow", "Yellowfin", "Alder",
    "Basalt", "Cinder", "Delta", "Everest", "Fjord", "Glacier", "Horizon", "Ivory",
)  # fmt: skip
_SECTORS = (
    "Analytics", "Robotics", "Cloud", "Logistics", "Health", "Labs", "Systems", "Software",
    "Data", "Payments", "Energy", "Media", "Security", "Networks", "Biotech", "AI",
    "Insights", "Commerce", "Telematics", "Learning", "Mobility", "Fintech", "Devices",
    "Studios", "Foods", "Dynamics", "Solutions", "Technologies", "Ventures", "Digital",
    "Semiconductors", "Marketing", "Insurance", "Freight", "HR", "Legal", "Observability",
    "Compute", "Storage", "Messaging", "Games", "Retail", "Aerospace", "Genomics",
)  # fmt: skip
# Repeated entries weight the draw: most companies carry no suffix or a US one.
_SUFFIXES = (
    "", "", "", "", " Inc.", " Inc.", " Inc.", " LLC", " LLC", " Ltd", " Ltd.", " GmbH",
    " AG", " S.A.", " B.V.", " Pty Ltd", " Corp.", " SAS", " Oy", " AB", " plc", " K.K.",
    " S.r.l.", " ApS", " Co.",
)  # fmt: skip
# Names that break naive code: non-ASCII scripts, commas, quotes, ampersands, emoji, and
# real-world names that start with a CSV-formula character.
_SPECIAL_NAMES = (
    "Zürich Datenwerk AG",
    "Société Générale de Logiciels",
    "株式会社テスト",
    "Müller & Söhne Cloud GmbH",
    "Ørsted Dataværk ApS",
    "São Paulo Pagamentos Ltda.",
    "Łódź Software Sp. z o.o.",
    "Ελληνική Ανάλυση Α.Ε.",
    "ООО «Облачные Решения»",
    "北京数据科技有限公司",
    "주식회사 클라우드웍스",
    "Café Olé Analytics",
    'Smith, Jones & "Partners" LLC',
    "O'Brien, Kelly & Co.",
    '"Quoted" Ventures, Inc.',
    "Rocket 🚀 Labs",
    "@Home Networks",
    "+Plus Consulting",
    "Ağ Teknolojileri A.Ş.",
    "Nguyễn Phát Triển Phần Mềm",
)

_REGIONS = ("us-east", "us-west", "eu-central", "eu-west", "apac", "latam", "mea")
_PLANS = (
    "Starter", "Growth", "Scale", "Enterprise", "Enterprise, annual", "Legacy (2019)",
    "Pay-as-you-go",
)  # fmt: skip
_ACCOUNT_MANAGERS = (
    "Alice Johnson", "Bob Smith", "José Álvarez", "Zoë O'Neil", "Søren Madsen", "Chen Wei",
    "佐藤 花子", "Priya Natarajan", "Olu Adeyemi", "Małgorzata Nowak", 'D\'Angelo "DJ" Jones',
)  # fmt: skip
_INDUSTRIES = ("SaaS", "Fintech", "Healthcare", "Retail", "Manufacturing", "Media", "Gaming")
# Free text as support staff really type it, plus values a spreadsheet would run as a
# formula when a CSV export is opened (the export must neutralise them).
_NOTES = (
    "Prefers invoices in EUR, not USD",
    'Contract says "net 45", finance agreed',
    "Line one\nLine two",
    'Escalated twice,\n"urgent" per CFO',
    "Renewal: 2026-03-01; contact Zoë",
    "Ünïcödé ✓ 日本語のメモ",
    "",
    '=HYPERLINK("http://evil.example","x")',
    "@SUM(A1)",
    "=1+2",
    "-2+3+cmd|' /C calc'!A0",
    "+1 555 0100",
    "-42",
    "\tTab-led note",
)
_BILLING_PHONES = ("+1 555 0100", "+44 20 7946 0958", "+49 30 901820", "(555) 010-0199")
_COST_CENTERS = ("CC-100", "CC-240", "-42", "0042", "=A1*2")

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _UPPER + "abcdefghijklmnopqrstuvwxyz0123456789"
_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# bytes.translate tables that turn random bytes into characters of each alphabet.
_ALNUM_TABLE = (_ALNUM * 5).encode()[:256]
_LOWER_ALNUM_TABLE = (_LOWER_ALNUM * 8).encode()[:256]
# str.translate table for the Salesforce checksum: upper-case letters to "1", others to "0".
_UPPER_AS_ONE = {ord(c): "1" if c in _UPPER else "0" for c in _ALNUM}
# Salesforce's 15-to-18-character checksum alphabet.
_SF_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SF_INSTANCES = ("5e", "8c", "Dn", "3t", "1x", "Hs", "0b")

# The three alias shapes (see _alias) in every order, so a customer's first alias, which is
# also its external_id, varies in shape.
_ALIAS_FORM_ORDERS = tuple(itertools.permutations((0, 1, 2)))

_NON_SLUG = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=1024)
def _slug(name: str) -> str:
    """ASCII slug for aliases; names in non-Latin scripts fall back to a generic word."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NON_SLUG.sub("-", ascii_name.lower()).strip("-") or "customer"


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def _timestamp(ms: int) -> str:
    """RFC 3339 UTC with milliseconds and `Z`, the shape Metronome sends."""
    # Formatting the date only once per day keeps 100,000 customers fast to generate.
    days, ms_of_day = divmod(ms, 86_400_000)
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{_day(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def _pick(rng: random.Random, options: Sequence[T]) -> T:
    # Cheaper than rng.choice, which matters at 100,000 customers.
    return options[int(rng.random() * len(options))]


def _random_text(rng: random.Random, table: bytes, length: int) -> str:
    # Random bytes mapped through a 256-entry table: far faster than picking characters
    # one by one. The table repeats its alphabet, so the slight bias is harmless here.
    return rng.randbytes(length).translate(table).decode("ascii")


def _salesforce_id(rng: random.Random) -> str:
    # Shaped like a real Account ID: key prefix 001, instance, zero padding, a base-62 tail,
    # then the case-encoding checksum that turns a 15-character ID into the 18-character one.
    # Computed here rather than with customers.salesforce, so the dashboard's conversion is
    # checked against an independent implementation.
    base = "001" + _pick(rng, _SF_INSTANCES) + "0000" + _random_text(rng, _ALNUM_TABLE, 6)
    checksum = ""
    for start in (0, 5, 10):
        # One bit per character, set when it is upper case, least significant first.
        bits = int(base[start : start + 5].translate(_UPPER_AS_ONE)[::-1], 2)
        checksum += _SF_CHECKSUM[bits]
    return base + checksum


def _company_name(rng: random.Random) -> str:
    if rng.random() < _SPECIAL_NAME:
        return _pick(rng, _SPECIAL_NAMES)
    prefix = _pick(rng, _PREFIXES)
    suffix = _pick(rng, _SUFFIXES)
    if rng.random() < 0.15:
        return prefix + suffix
    return f"{prefix} {_pick(rng, _SECTORS)}{suffix}"


def _alias(rng: random.Random, slug: str, form: int) -> str:
    if form == 0:
        return f"{slug}-{100 + int(rng.random() * 99_900)}"
    if form == 1:
        return "acct_" + _random_text(rng, _LOWER_ALNUM_TABLE, 10)
    return f"billing@{slug}.example"


def _unique_aliases(rng: random.Random, slug: str, used: set[str]) -> list[str]:
    draw = rng.random()
    count = 1 if draw < 0.55 else 2 if draw < 0.9 else 3
    forms = _pick(rng, _ALIAS_FORM_ORDERS)[:count]
    aliases = []
    for form in forms:
        alias = _alias(rng, slug, form)
        while alias in used:
            # Company names repeat, so email-like aliases collide: disambiguate them the way
            # people do, with a plus tag; the other forms just redraw their random part.
            if form == 2:
                alias = f"billing+{rng.randrange(2, 10_000)}@{slug}.example"
            else:
                alias = _alias(rng, slug, form)
        used.add(alias)
        aliases.append(alias)
    return aliases


def _custom_fields(rng: random.Random) -> dict[str, str]:
    if rng.random() < _EMPTY_CUSTOM_FIELDS:
        return {}
    fields: dict[str, str] = {}
    if rng.random() < 0.7:
        fields["region"] = _pick(rng, _REGIONS)
    if rng.random() < 0.8:
        fields["plan"] = _pick(rng, _PLANS)
    if rng.random() < 0.5:
        fields["account_manager"] = _pick(rng, _ACCOUNT_MANAGERS)
    if rng.random() < 0.4:
        fields["netsuite_id"] = f"NS-{100_000 + int(rng.random() * 900_000)}"
    if rng.random() < 0.3:
        fields["industry"] = _pick(rng, _INDUSTRIES)
    if rng.random() < 0.25:
        fields["notes"] = _pick(rng, _NOTES)
    if rng.random() < 0.15:
        fields["billing_phone"] = _pick(rng, _BILLING_PHONES)
    if rng.random() < 0.1:
        fields["cost_center"] = _pick(rng, _COST_CENTERS)
    if rng.random() < 0.05:
        # Keys are free-form too: spaces and non-ASCII happen.
        fields["Fälligkeit (Tage)"] = _pick(rng, ("14", "30", "45", "60"))
    return fields


def _generate(count: int, seed: int) -> tuple[dict[str, Any], ...]:
    rng = random.Random(seed)
    # A stream of its own, so choosing the stored form leaves the rest of the data as it was.
    salesforce_form_rng = random.Random(f"{seed}:salesforce-form")
    used_aliases: set[str] = set()
    used_sf_ids: set[str] = set()
    # Archived customers with a Salesforce ID that a later customer may replace.
    replaceable: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []

    for index in range(count):
        # A growing company signs more customers each year: map evenly spaced points through
        # a convex curve. The jitter stays inside each point's slot, so order is preserved.
        position = ((index + rng.random()) / count) ** 0.75
        created_ms = _START_MS + int(_SPAN_MS * position)
        remaining_ms = _END_MS - created_ms
        updated_ms = created_ms
        if rng.random() < 0.9:
            updated_ms += int(remaining_ms * rng.random() ** 2)

        customer_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        archived = rng.random() < _ARCHIVED_SHARE
        name = _company_name(rng)

        salesforce_id: str | None = None
        replaced: dict[str, Any] | None = None
        if rng.random() < _HAS_SALESFORCE_ID:
            if not archived and replaceable and rng.random() < _REPLACES_ARCHIVED:
                replaced = replaceable.pop(rng.randrange(len(replaceable)))
                salesforce_id = replaced["customer_config"]["salesforce_account_id"]
                name = replaced["name"]
            else:
                salesforce_id = _salesforce_id(rng)
                while salesforce_id in used_sf_ids:
                    salesforce_id = _salesforce_id(rng)
                used_sf_ids.add(salesforce_id)
                if salesforce_form_rng.random() < _SALESFORCE_15_CHARACTER_FORM:
                    salesforce_id = salesforce_id[:15]

        aliases = _unique_aliases(rng, _slug(name), used_aliases)
        if replaced is not None and rng.random() < 0.5:
            # The replacement sometimes inherited the old record's alias, so the alias
            # matches two customers: one active, one archived.
            aliases.append(replaced["ingest_aliases"][0])

        customer: dict[str, Any] = {
            "id": customer_id,
            "external_id": aliases[0],
            "ingest_aliases": aliases,
            "name": name,
            "customer_config": {"salesforce_account_id": salesforce_id},
            "custom_fields": _custom_fields(rng),
            "created_at": _timestamp(created_ms),
            "updated_at": "",  # set below, once archiving is known
        }
        if archived:
            archived_ms = created_ms + 1 + int((remaining_ms - 1) * rng.random())
            updated_ms = max(updated_ms, archived_ms)
            customer["archived_at"] = _timestamp(archived_ms)
            if salesforce_id is not None:
                replaceable.append(customer)
        elif rng.random() >= _ACTIVE_ABSENT_ARCHIVED_AT:
            customer["archived_at"] = None
        customer["updated_at"] = _timestamp(updated_ms)

        if rng.random() >= _ABSENT_BILLABLE_STATUS:
            effective_at = None
            if rng.random() < 0.75:
                effective_at = _timestamp(created_ms + int(remaining_ms * rng.random()))
            customer["current_billable_status"] = {
                "value": "billable" if rng.random() < 0.85 else "unbillable",
                "effective_at": effective_at,
            }
        customers.append(customer)

    # The sandbox lists customers by (created_at, id). Timestamps are already increasing,
    # but millisecond rounding could tie on huge lists, so make the order exact.
    customers.sort(key=lambda c: (c["created_at"], c["id"]))
    return tuple(customers)


@functools.lru_cache(maxsize=8)
def _cached(count: int, seed: int) -> tuple[dict[str, Any], ...]:
    return _generate(count, seed)


def generate_customers(
    count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED
) -> list[dict[str, Any]]:
    """`count` wire-format CustomerDetail dicts, ordered by created_at then id.

    Cached per (count, seed). The list is a fresh copy on every call, so callers may reorder
    or extend it, but the dicts inside are shared with the cache: treat them as read-only.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    return list(_cached(count, seed))
