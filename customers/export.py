"""The CSV download: every customer matching the page's filters, streamed page by page.

Finance staff reconcile invoices from this file, so it is either complete or visibly broken:
the view fetches the first page before answering (so a Metronome failure is an error page),
and a failure after the first byte raises out of the stream, which makes the server drop the
connection without the final chunk, so the browser marks the download as failed.

The file's format (columns, rows, formula neutralisation) is in `csv_file`; the match
report reuses it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import StreamingHttpResponse
from django.utils import timezone

from customers import search
from customers.csv_file import BOM, LINE_END, csv_chunks, csv_line, neutralise
from customers.index import live as index_live
from customers.index import search as index_search
from customers.index.query import IndexQuery
from customers.metronome import (
    CustomerPage,
    CustomerQuery,
    MetronomeClient,
    MetronomeError,
)
from customers.models import ExportAudit
from customers.pasted import Ignored
from customers.salesforce import SalesforceId
from customers.urlstate import ORDER_PASTED, ListState

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # Metronome's maximum: fewest round trips
# The audit keeps what was exported as the form validated it, never the raw query string (any
# junk parameters would be stored with every download), and at most this many characters:
# a paste of 1,000 IDs is summed up rather than stored whole.
MAX_AUDITED_FILTERS = ExportAudit._meta.get_field("filters").max_length or 2000
AUDITED_IDS = 20


def filename(
    query: CustomerQuery, at: datetime, *, sandbox: bool = False, searched: bool = False
) -> str:
    """`metronome-customers-active-20261125T1805Z.csv`: which customers, and when; a file of
    the sandbox's made-up customers says so (`...-SANDBOX-...`), wherever it ends up. An
    index search (`searched`) is always "filtered"."""
    filtered = searched or query.is_filtered
    kind = "filtered" if filtered else "archived" if query.only_archived else "active"
    source = "-SANDBOX" if sandbox else ""
    return f"metronome-customers{source}-{kind}-{at.astimezone(UTC):%Y%m%dT%H%MZ}.csv"


# --- The audited download -------------------------------------------------------------------


def audited_filters(query: CustomerQuery, index_query: IndexQuery | None = None) -> str:
    """The validated filters of an export as compact JSON, empty ones left out: long ID lists
    as their first few and a count, and the whole cut to MAX_AUDITED_FILTERS."""
    described: dict[str, object] = {
        "customer_ids": query.customer_ids,
        "salesforce_account_ids": query.salesforce_account_ids,
        "ingest_alias": query.ingest_alias,
        "only_archived": query.only_archived,
    }
    if index_query is not None:
        filters = index_query.filters
        described |= {
            "q": index_query.q,
            "sort": index_query.sort,
            **{field: getattr(filters, field) for field in filters.__dataclass_fields__},
        }
    plain = {name: _audited(value) for name, value in described.items() if value}
    text = json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= MAX_AUDITED_FILTERS else text[: MAX_AUDITED_FILTERS - 1] + "…"


def _audited(value: object) -> object:
    if isinstance(value, tuple | list):
        items = [_audited(item) for item in value[:AUDITED_IDS]]
        if len(value) > AUDITED_IDS:
            items.append(f"… {len(value) - AUDITED_IDS} more ({len(value)} in all)")
        return items
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)  # dates and the sort


class TooFrequent(Exception):
    """The person started EXPORTS_PER_MINUTE exports in the last minute already."""

    retry_after = 60

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You have started {limit} downloads in the last minute, the most allowed. "
            "Try again in a minute."
        )


def check_rate(user: AbstractBaseUser | AnonymousUser) -> None:
    """Raise TooFrequent when `user` started EXPORTS_PER_MINUTE exports in the last minute.
    Counted from the audit rows, so every worker and instance sees the same count; exports
    running at once are bounded separately (customers.concurrency)."""
    limit: int = settings.EXPORTS_PER_MINUTE
    if not isinstance(user, User):
        return
    since = timezone.now() - timedelta(minutes=1)
    if ExportAudit.objects.filter(user=user, started_at__gte=since).count() >= limit:
        raise TooFrequent(limit)


@dataclass(frozen=True, slots=True)
class Download:
    """A started export: its audit row, and the rest of its body from the first chunk on."""

    audit: ExportAudit
    query: CustomerQuery
    body: Iterator[bytes]
    sandbox: bool
    searched: bool = False
    kind: str = "customers"

    def response(self) -> StreamingHttpResponse:
        response = StreamingHttpResponse(self.body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self._filename()}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def _filename(self) -> str:
        at = self.audit.started_at
        name = filename(self.query, at, sandbox=self.sandbox, searched=self.searched)
        return name.replace("metronome-customers", f"metronome-{self.kind}", 1)


class Start(Protocol):
    """What the download views call: `start` or `start_match_report`."""

    def __call__(
        self,
        client: MetronomeClient,
        state: ListState,
        *,
        user: AbstractBaseUser | AnonymousUser,
        salesforce_ids: Sequence[SalesforceId],
        ignored: Sequence[tuple[str, Sequence[Ignored]]],
        extra_columns: Sequence[str],
        sandbox: bool,
    ) -> Download: ...


def start(
    client: MetronomeClient,
    state: ListState,
    *,
    user: AbstractBaseUser | AnonymousUser,
    salesforce_ids: Sequence[SalesforceId] | None = None,
    ignored: Sequence[tuple[str, Sequence[Ignored]]] = (),
    extra_columns: Sequence[str] = (),
    positions: Sequence[int] = (),
    sandbox: bool = False,
) -> Download:
    """Record the export, fetch its first page and write its first chunk. A Metronome
    failure before that raises here (the audit already says it failed), so the view can
    answer with an error page instead of a broken file. An index search's file is every
    match of that search, re-read live from Metronome in batches of 100. With `positions`
    (customers.columns.csv_positions), only a person's chosen columns."""
    audit = _audit(user, state)
    index_query = state.index_query
    pages = (
        index_live.iter_pages(client, index_query, page_size=PAGE_SIZE)
        if index_query is not None
        else _pages(client, state, salesforce_ids)
    )
    body = _audited_body(csv_chunks(pages, extra_columns, positions), pages, audit)
    first_chunk = next(body)  # raises the first page's failure, audited
    return Download(
        audit=audit,
        query=state.query,
        body=_resume(first_chunk, body),
        sandbox=sandbox,
        searched=index_query is not None,
    )


def _audit(user: AbstractBaseUser | AnonymousUser, state: ListState) -> ExportAudit:
    return ExportAudit.objects.create(
        user=user if isinstance(user, User) else None,
        username=user.get_username(),
        filters=audited_filters(state.query, state.index_query),
    )


REPORT_COLUMNS = ("pasted_id", "matched_as", "customer_id", "customer_name", "archived", "outcome")


def start_match_report(
    client: MetronomeClient,
    state: ListState,
    *,
    user: AbstractBaseUser | AnonymousUser,
    salesforce_ids: Sequence[SalesforceId] | None = None,
    ignored: Sequence[tuple[str, Sequence[Ignored]]] = (),
    extra_columns: Sequence[str] = (),
    sandbox: bool = False,
) -> Download:
    """The match report of a pasted-ID search as a CSV, audited like the export: one row per
    customer a pasted ID matched (active or archived), per pasted ID not found, and per
    pasted value ignored. Cells neutralised like the export's."""
    audit = _audit(user, state)

    def pages() -> Generator[list[list[str]], None, None]:
        rows = [
            [
                neutralise(row.pasted),
                neutralise(row.matched_as),
                neutralise(row.customer_id),
                neutralise(row.customer_name),
                "true" if row.archived else "false" if row.customer_id else "",
                row.outcome,
            ]
            for row in search.match_rows(client, state.query, salesforce_ids)
        ]
        rows += [
            [neutralise(item.value), "", "", "", "", "ignored"]
            for _, values in ignored
            for item in values
        ]
        yield rows

    def chunks() -> Generator[tuple[bytes, int], None, None]:
        head = BOM + csv_line(REPORT_COLUMNS) + LINE_END
        for rows in source:  # one page: the whole report
            text = head + "".join([csv_line(row) + LINE_END for row in rows])
            yield text.encode("utf-8", "replace"), len(rows)

    source = pages()
    body = _audited_body(chunks(), source, audit)
    first_chunk = next(body)
    return Download(
        audit=audit,
        query=state.query,
        body=_resume(first_chunk, body),
        sandbox=sandbox,
        kind="match-report",
    )


def _audited_body(
    chunks: Generator[tuple[bytes, int], None, None],
    pages: Generator[object, None, None],
    audit: ExportAudit,
) -> Generator[bytes, None, None]:
    """The file, recorded in `audit` however it ends: one try/finally from the first API
    call to the last chunk.

    `rows_written` counts the rows of chunks the server has taken and asked for more after:
    with a disconnected client, the chunk whose write failed is not counted. (A response
    closed before its first chunk was asked for would leave the row "started": WSGI servers
    such as gunicorn take the first chunk before sending anything, so that does not happen.)
    """
    started = time.monotonic()
    rows = 0
    outcome, error = ExportAudit.Outcome.FAILED, ""
    try:
        for chunk, count in chunks:
            yield chunk
            rows += count
        outcome = ExportAudit.Outcome.COMPLETE
    except GeneratorExit:
        # The server stopped reading before the end: the client went away.
        error = "client disconnected"
        raise
    except MetronomeError as exc:
        error = str(exc)
        raise
    except Exception as exc:
        # The server logs the traceback; the audit says what kind of failure it was.
        error = f"unexpected error ({type(exc).__name__})"
        raise
    finally:
        chunks.close()
        pages.close()  # no call to Metronome for a page nobody will read
        finish_audit(audit, outcome, rows=rows, started=started, error=error)
        if outcome == ExportAudit.Outcome.COMPLETE:
            logger.info("CSV export %s by %s: %d rows", audit.pk, audit.username, rows)
        else:
            logger.error(
                "CSV export %s by %s failed after %d rows: %s",
                audit.pk,
                audit.username,
                rows,
                error,
            )


def _pages(
    client: MetronomeClient,
    state: ListState,
    salesforce_ids: Sequence[SalesforceId] | None,
) -> Generator[CustomerPage, None, None]:
    """The customers to write: Metronome's own paging, or a search looked up in batches
    (`customers.search`), in the order the page shows them (paste order when chosen)."""
    query = state.query
    pasted_order = state.order == ORDER_PASTED and query.has_id_filters
    if search.is_paged_by_metronome(query) and not pasted_order:
        # Past what the account can plausibly hold the export stops, visibly (an API that
        # answers new cursors for ever would otherwise stream without end).
        return client.iter_pages(
            query, page_size=PAGE_SIZE, max_rows=index_search.plausible_customer_count()
        )
    return search.iter_pages(
        client,
        query,
        page_size=PAGE_SIZE,
        salesforce_ids=salesforce_ids,
        pasted_order=pasted_order,
    )


def _resume(first_chunk: bytes, rest: Generator[bytes, None, None]) -> Iterator[bytes]:
    try:
        yield first_chunk
        yield from rest
    finally:
        rest.close()  # a response closed after the first chunk still finishes the audit


def finish_audit(
    audit: ExportAudit,
    outcome: ExportAudit.Outcome,
    *,
    rows: int,
    started: float,
    error: str = "",
) -> None:
    """Record how an export ended. `started` is the export's `time.monotonic()` at the start."""
    audit.outcome = outcome
    audit.rows_written = rows
    audit.error = error[:2000]
    audit.duration_ms = round((time.monotonic() - started) * 1000)
    audit.save(update_fields=["outcome", "rows_written", "error", "duration_ms"])
