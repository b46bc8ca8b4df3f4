"""The customers page when the synced index answers: the index finds, the API tells the truth.

`customers.index.search` gives one page of customer IDs in order (and the total); this
module re-reads those customers live from Metronome by `customer_ids`, one call per 100, so
every value on screen is current. A customer the index still has but Metronome now lists in
the other state (archived, or restored, since the last sync) or not at all (deleted) is
labelled as such; a deleted one is shown with the values the index kept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass

from customers.index.query import IndexQuery
from customers.index.search import Archived, IndexResult
from customers.index.search import iter_ids as iter_index_ids
from customers.index.search import search as index_search
from customers.metronome import (
    MAX_IDS_PER_REQUEST,
    BillableStatus,
    CurrentBillableStatus,
    Customer,
    CustomerPage,
    CustomerQuery,
    MetronomeClient,
    MetronomeError,
    TooManyRows,
)
from customers.models import IndexedCustomer

logger = logging.getLogger(__name__)

ARCHIVED_SINCE = "archived since the index was updated"
RESTORED_SINCE = "restored since the index was updated"
GONE = "no longer in Metronome"


@dataclass(frozen=True, slots=True)
class LiveCustomer:
    customer: Customer
    note: str  # "" when Metronome still lists it as the index did


@dataclass(frozen=True, slots=True)
class IndexPage:
    result: IndexResult
    customers: tuple[LiveCustomer, ...]
    # Set when Metronome could not be re-read: the rows are the index's, possibly stale.
    stale_error: str = ""


def page(client: MetronomeClient, query: IndexQuery, *, page: int, per_page: int) -> IndexPage:
    """One page of the index search, each customer as Metronome has it now; when Metronome
    cannot answer, as the index last saw it, with the error (the index still holds names and
    IDs, which is what a person searching needs most)."""
    result = index_search(
        query.q, filters=query.filters, sort=query.sort, page=page, per_page=per_page
    )
    try:
        customers = live(client, result.customer_ids, query.filters.archived)
    except MetronomeError as error:
        logger.warning("Index search shown without the live re-read: %s", error)
        kept = _from_index(result.customer_ids)
        rows = tuple(LiveCustomer(kept[i], "") for i in result.customer_ids if i in kept)
        return IndexPage(result, rows, stale_error=str(error))
    return IndexPage(result, customers)


def live(
    client: MetronomeClient, customer_ids: Sequence[str], archived: Archived
) -> tuple[LiveCustomer, ...]:
    """`customer_ids` re-read from Metronome, in the given order: first in the state the
    search shows (active for All), then the ones missing in the other state."""
    first_state = archived is Archived.ARCHIVED
    found = _read(client, customer_ids, only_archived=first_state)
    missing = [customer_id for customer_id in customer_ids if customer_id not in found]
    moved = _read(client, missing, only_archived=not first_state) if missing else {}
    gone = [customer_id for customer_id in missing if customer_id not in moved]
    kept = _from_index(gone) if gone else {}
    moved_note = (
        "" if archived is Archived.ALL else RESTORED_SINCE if first_state else ARCHIVED_SINCE
    )
    rows: list[LiveCustomer] = []
    for customer_id in customer_ids:
        if customer_id in found:
            rows.append(LiveCustomer(found[customer_id], ""))
        elif customer_id in moved:
            rows.append(LiveCustomer(moved[customer_id], moved_note))
        elif customer_id in kept:
            rows.append(LiveCustomer(kept[customer_id], GONE))
    return tuple(rows)


def iter_pages(
    client: MetronomeClient, query: IndexQuery, *, page_size: int = MAX_IDS_PER_REQUEST
) -> Generator[CustomerPage, None, None]:
    """Every match of the index search, re-read live in batches of `page_size`: the CSV
    export's source. The matches come from one query (`search.iter_ids`: one state of the
    index, however long the export). A customer deleted since the last sync is left out;
    one archived or restored since is written as Metronome has it now."""
    batch: list[str] = []
    with closing(iter_index_ids(query.q, filters=query.filters, sort=query.sort)) as ids:
        for customer_id in ids:
            batch.append(customer_id)
            if len(batch) == page_size:
                yield _live_page(client, batch, query.filters.archived)
                batch = []
    if batch:
        yield _live_page(client, batch, query.filters.archived)


def _live_page(client: MetronomeClient, batch: Sequence[str], archived: Archived) -> CustomerPage:
    rows = live(client, batch, archived)
    return CustomerPage(tuple(row.customer for row in rows if row.note != GONE), None)


def _read(
    client: MetronomeClient, customer_ids: Sequence[str], *, only_archived: bool
) -> dict[str, Customer]:
    found: dict[str, Customer] = {}
    for start in range(0, len(customer_ids), MAX_IDS_PER_REQUEST):
        batch = tuple(customer_ids[start : start + MAX_IDS_PER_REQUEST])
        query = CustomerQuery(customer_ids=batch, only_archived=only_archived)
        wanted = set(batch)
        # At most 100 IDs and a limit of 100: one page should hold them all, but an answer
        # may be cut short with a cursor to the rest (even an empty page with one), and a
        # customer not read would be taken for deleted: left off a page's values and
        # silently out of a CSV export. So the cursor is followed; past one page's worth of
        # rows the answer is broken, not long (PagingLimitReached, an error the page and
        # the export show).
        pages = client.follow_customers(query, MAX_IDS_PER_REQUEST, max_rows=MAX_IDS_PER_REQUEST)
        try:
            for page in pages:  # each page's call is over before it comes: nothing to close
                found.update((c.id, c) for c in page.rows if c.id in wanted)
                if wanted.issubset(found):
                    break
        except TooManyRows:
            raise TooManyRows(
                f"Metronome answered a look-up of {len(batch):,} customer IDs with more than "
                f"{MAX_IDS_PER_REQUEST:,} customers, so the dashboard stopped reading: the "
                "answer is broken. Try again; if this keeps happening, tell the dashboard's "
                "developers."
            ) from None
    return found


def _from_index(customer_ids: Sequence[str]) -> dict[str, Customer]:
    """The last synced values of customers Metronome no longer lists."""
    indexed = IndexedCustomer.objects.filter(id__in=[uuid.UUID(i) for i in customer_ids])
    return {str(row.id): _customer(row) for row in indexed}


def _customer(row: IndexedCustomer) -> Customer:
    status = (
        CurrentBillableStatus(BillableStatus(row.billable_status), row.billable_status_effective_at)
        if row.billable_status in {status.value for status in BillableStatus}
        else None
    )
    return Customer(
        id=str(row.id),
        name=row.name,
        external_id=row.external_id,
        ingest_aliases=tuple(str(alias) for alias in row.ingest_aliases),
        custom_fields={str(k): str(v) for k, v in row.custom_fields.items()},
        salesforce_account_id=row.salesforce_account_id or None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        billable_status=status,
    )
