"""The row a customer becomes in the index: its id as the database driver takes it, a
fingerprint of its JSON as Metronome sent it that says whether it changed since the last
sync, and, only when it did, the full row, written out per database rather than through
Django's fields (bench/README.md)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from django.db import connection

from customers.index.keys import MAX_INDEXED_TEXT, fold, salesforce_id_18, salesforce_key
from customers.metronome import UNREADABLE_CUSTOMER, Customer, MalformedResponse, decode
from customers.models import IndexedCustomer

# The index's columns, in the order every staging row has them; `text_key` is the swap's to
# give (staging.swap_into_index).
COLUMNS = [field for field in IndexedCustomer._meta.concrete_fields if field.name != "text_key"]


_HEX_DIGITS = "0123456789abcdef"
_ENCODER = msgspec.json.Encoder()


def _canonical_uuid_hex(value: str) -> str | None:
    """The 32 hex digits of a UUID in its canonical spelling (lower case, dashes at 8, 13,
    18 and 23), else None. Runs for every listed customer: a regular expression for the same
    check took 2 µs, four times this."""
    digits = value.replace("-", "")
    if (
        len(value) == 36
        and len(digits) == 32
        and value[8] == value[13] == value[18] == value[23] == "-"
        and not digits.strip(_HEX_DIGITS)  # every character a hex digit
    ):
        return digits
    return None


# A listed customer as the sync first reads it: its id as the database driver takes it, its
# fingerprint, and its JSON as Metronome sent it (read in full only when it changed).
Listed = tuple[object, str, bytes]


# How a row is built from a customer's JSON (its folded texts: keys.fold), in every
# fingerprint: a change to it makes every row look changed once, so the next sync rewrites
# them all (as a first sync would) instead of keeping rows built the old way. 2: letters
# such as ø and æ fold to o and ae; folded names, aliases and external IDs cut to
# keys.MAX_INDEXED_TEXT.
ROW_FORMAT = b"rows-2"


def fingerprint(span: bytes) -> str:
    """A digest of a customer's JSON as Metronome sent it, byte for byte: equal bytes, the
    same customer, as when it was last read in full and checked. Any change Metronome makes
    to how it writes a customer (another key order, spacing) rewrites that row once, never
    misses one. Digesting the bytes, cut out of the page in C (`decode.listed_page`),
    costs a third of parsing each customer into a dict and serialising it again."""
    return hashlib.blake2b(span, digest_size=16, person=ROW_FORMAT).hexdigest()


def row_builders(
    indexed_at: datetime,
) -> tuple[
    Callable[[str, bytes], Listed],
    Callable[[bytes, object, str], tuple[object, ...]],
]:
    """Two functions: `read`, which every listed customer goes through (in its listing's
    thread), checks only what identifies it and fingerprints its JSON as sent; and
    `to_row`, only for those whose fingerprint the index lacks, which reads the customer in
    full (`decode.customer`, every check) into its staging row, in `COLUMNS` order. Both run
    in the two listing threads at once (`to_row` there in a first sync), so they keep no
    state of their own: msgspec's encoders and decoders may be shared between threads.
    Building a `Customer` for every listed customer was most of an unchanged resync's CPU
    (bench/README.md). Rows are written out rather than through the fields'
    get_db_prep_save, which took most of a 100,000-customer sync's time."""
    if connection.vendor == "sqlite":

        def timestamp(value: datetime | None) -> object:
            # As Django stores it on SQLite: naive UTC, in str()'s format. Metronome sends
            # UTC: msgspec writes that in C as `2024-03-01T12:00:00.500000Z` (no fraction
            # when it is zero, as str() does), so a space for the `T` and no `Z` make it
            # str()'s. str() took six times as long, up to four times a row (bench/README.md).
            if value is None:
                return None
            if value.tzinfo is UTC:
                text: str = msgspec.to_builtins(value)
                return text[:-1].replace("T", " ", 1)
            return str(value.astimezone(UTC).replace(tzinfo=None))

        def identifier(value: str) -> object:
            # Any other spelling through uuid.UUID, which raises a clear ValueError.
            return _canonical_uuid_hex(value) or uuid.UUID(value).hex
    else:

        def timestamp(value: datetime | None) -> object:
            return value

        def identifier(value: str) -> object:
            # Text, as COPY takes it and `id::text` gives it back.
            return value if _canonical_uuid_hex(value) else str(uuid.UUID(value))

    def to_json(value: object) -> str:
        # As json.dumps(ensure_ascii=False) but compact, a fifth of its time; the column is
        # read back as JSON, never compared as text.
        return _ENCODER.encode(value).decode()

    indexed = timestamp(indexed_at)
    expected = [
        "id", "name", "name_folded", "ingest_aliases", "aliases_folded", "external_id",
        "external_id_folded", "salesforce_account_id", "salesforce_account_id_18",
        "salesforce_key", "billable_status", "billable_status_effective_at", "created_at",
        "updated_at", "archived_at", "custom_fields", "custom_values_folded", "fingerprint",
        "indexed_at",
    ]  # fmt: skip
    if [field.attname for field in COLUMNS] != expected:
        raise AssertionError("the index's columns changed: update row_builders")

    def read(customer_id: str, span: bytes) -> Listed:
        # Equal to the stored fingerprint, the customer is exactly as when it was last read
        # in full and checked.
        try:
            db_id = identifier(customer_id)
        except ValueError:
            raise MalformedResponse(UNREADABLE_CUSTOMER) from None
        return db_id, fingerprint(span), span

    def to_row(span: bytes, db_id: object, fingerprint: str) -> tuple[object, ...]:
        customer = decode.customer(span)
        if b"\\u0000" in span:  # JSON holds a NUL only as this escape: rarely worth a look
            customer = _storable(customer)
        aliases = customer.ingest_aliases
        custom_fields = customer.custom_fields
        salesforce_id = customer.salesforce_account_id or ""
        status = customer.billable_status
        return (
            db_id,
            customer.name,
            fold(customer.name)[:MAX_INDEXED_TEXT],
            to_json(aliases),
            "".join(f"\n{fold(alias)[:MAX_INDEXED_TEXT]}" for alias in aliases) + "\n",
            customer.external_id,
            fold(customer.external_id)[:MAX_INDEXED_TEXT],
            salesforce_id,
            salesforce_id_18(salesforce_id),
            salesforce_key(salesforce_id),
            status.value.value if status else "",
            timestamp(status.effective_at if status else None),
            timestamp(customer.created_at),
            timestamp(customer.updated_at),
            timestamp(customer.archived_at),
            to_json(custom_fields),
            "\n".join(fold(value) for value in custom_fields.values()),
            fingerprint,
            indexed,
        )

    return read, to_row


def _storable(customer: Customer) -> Customer:
    """The customer with every NUL character (U+0000) of its text as U+FFFD: PostgreSQL's text
    and jsonb cannot hold one, and a sync must not fail on one name Metronome sent (its
    answers are untrusted input). The page shows Metronome's own values, re-read live; a NUL
    cannot be searched for (the form refuses it), so the index loses nothing."""
    texts = (
        customer.name,
        customer.external_id,
        customer.salesforce_account_id or "",
        *customer.ingest_aliases,
        *customer.custom_fields,
        *customer.custom_fields.values(),
    )
    if not any("\x00" in text for text in texts):
        return customer
    return msgspec.structs.replace(
        customer,
        name=_without_nul(customer.name),
        external_id=_without_nul(customer.external_id),
        salesforce_account_id=(
            _without_nul(customer.salesforce_account_id)
            if customer.salesforce_account_id
            else customer.salesforce_account_id
        ),
        ingest_aliases=tuple(map(_without_nul, customer.ingest_aliases)),
        custom_fields={
            _without_nul(key): _without_nul(value) for key, value in customer.custom_fields.items()
        },
    )


def _without_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")
