"""The lookups behind a pasted-ID search: each pasted list looked up on its own, in batches,
in the Active and the Archived state, through one bounded thread pool, and how their answers
combine into the page's customers and the match report (see customers/search.py).

Asking for every pasted ID in both states, and for each Salesforce ID in every form it may be
stored in, costs 12 calls for 300 Salesforce IDs and 60 for 1,000 + 1,000 IDs. A recently
synced customer index knows which pasted IDs exist, in which state, and in which form each
customer stored its Salesforce ID (customers/index/known_ids.py): `look_up` asks only for
those (one form, one state: 3 calls for 300 IDs, 20 for 1,000 + 1,000), and asks in every
form and state for what the index does not know. The index may be behind Metronome, so its
word is checked: a customer it expected that the answers lack (its ID re-stored in the other
form, archived, deleted) sends that pasted ID out again in every form and state, in a second
round. What this cannot see is a customer created since the sync with a Salesforce ID that
another, indexed customer already holds, in the other form or state; hence the index is only
asked while it is recent (`PASTED_IDS_INDEX_MAX_AGE_SECONDS`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from customers import salesforce
from customers.index.known_ids import KnownIds
from customers.kept_pool import KeptPool
from customers.metronome import (
    MAX_IDS_PER_REQUEST,
    MAX_PAGE_SIZE,
    Customer,
    CustomerQuery,
    MalformedResponse,
    MetronomeClient,
)
from customers.salesforce import SalesforceId

# At most this many lookups of one search run at once, never one inside another: a
# 1,000 + 1,000 ID search takes a few rounds of calls without spending much of the
# account's rate limit at once. Enough for 300 pasted Salesforce IDs in one wave (6 lookups
# of 50, each in both states, Active and Archived): the page then waits on Metronome about
# once, not twice.
MAX_LOOKUP_THREADS = 12
# The process's threads for them, kept: starting a search's threads on its own path delayed
# its calls (bench/README.md).
lookup_pool = KeptPool("customer-search", MAX_LOOKUP_THREADS)
# One lookup names at most 100 IDs; a Salesforce ID may belong to a few customers (an
# archived record and its replacement), never to thousands.
MAX_CUSTOMERS_PER_LOOKUP = 20 * MAX_IDS_PER_REQUEST


@dataclass(frozen=True, slots=True)
class OtherForm:
    """A pasted Salesforce ID found through another form than the one pasted: `pasted`
    matched a customer whose Metronome record stores `stored`."""

    pasted: str
    stored: str


@dataclass(frozen=True, slots=True)
class SharedId:
    """A pasted Salesforce ID that more than one customer holds: how many in the state shown
    and in the other one."""

    pasted: str
    shown: int
    other_state: int

    @property
    def customers(self) -> int:
        return self.shown + self.other_state


@dataclass(frozen=True, slots=True)
class MatchReport:
    """What became of each pasted ID, looked up among active and archived customers alike.
    Customer IDs are given normalised, Salesforce IDs as pasted."""

    pasted: int
    matched: tuple[str, ...]
    # Found, but only among customers the current Active/Archived toggle hides.
    other_state: tuple[str, ...]
    not_found: tuple[str, ...]
    other_state_is_archived: bool = True
    matched_as: tuple[OtherForm, ...] = ()
    shared: tuple[SharedId, ...] = ()
    # Every ID found in either state, in pasted order, and how many of them only archived
    # customers hold: the report of a page that shows both (`in_all_states`).
    found: tuple[str, ...] = ()
    found_only_archived: int = 0
    # The page shows active and archived customers alike (the index's All): every ID found
    # is in `matched`, none in `other_state`.
    all_states: bool = False

    def in_all_states(self) -> MatchReport:
        """This report for a page that shows both states: every ID found is matched."""
        return replace(self, matched=self.found, other_state=(), all_states=True)


# --- The lookups -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PastedList:
    """One paste box's IDs: the keys they are compared by, how each is shown, the values of
    each API call in each state (archived: True), the key a found customer is matched back
    by, and the customers the index expects each key to find, in which state."""

    is_customer_ids: bool
    keys: tuple[str, ...]
    shown_as: dict[str, str]
    batches: dict[bool, tuple[tuple[str, ...], ...]]
    key_of: Callable[[Customer], str | None]
    expected: tuple[tuple[str, str, bool], ...] = ()  # (key, customer ID, archived)


def customer_key(customer: Customer) -> str | None:
    return customer.id


def salesforce_key(customer: Customer) -> str | None:
    stored = customer.salesforce_account_id
    return salesforce.key_for_stored(stored) if stored else None


BOTH_STATES = (False, True)


def _batched(
    values_by_key: list[tuple[tuple[str, ...], tuple[bool, ...]]],
) -> dict[bool, tuple[tuple[str, ...], ...]]:
    """Per state, the keys' values in calls of at most 100 (Metronome's limit per filter),
    in paste order, a key's values never split between calls. Each entry: a key's values,
    and the states to ask them in."""
    batches: dict[bool, list[tuple[str, ...]]] = {False: [], True: []}
    for state in BOTH_STATES:
        batch: list[str] = []
        for values, states in values_by_key:
            if state not in states:
                continue
            if batch and len(batch) + len(values) > MAX_IDS_PER_REQUEST:
                batches[state].append(tuple(batch))
                batch = []
            batch += values
        if batch:
            batches[state].append(tuple(batch))
    return {state: tuple(found) for state, found in batches.items()}


def pasted_lists(
    query: CustomerQuery,
    salesforce_ids: tuple[SalesforceId, ...],
    *,
    known: KnownIds | None = None,
    only: dict[bool, frozenset[str]] | None = None,
) -> list[PastedList]:
    """The query's paste boxes and their lookups: every ID in both states (and each
    Salesforce ID in every form), or, for an ID `known` holds, only the states and forms it
    expects; a pasted customer ID whose customer the Salesforce lookups already fetch is not
    asked again (`Plan.pooled`). `only` (by `is_customer_ids`) restricts the lookups to those
    keys."""
    values_by_key: list[tuple[tuple[str, ...], tuple[bool, ...]]] = []
    expected: list[tuple[str, str, bool]] = []
    wanted = only.get(False, frozenset()) if only is not None else None
    for pasted in salesforce_ids:
        if wanted is not None and pasted.key not in wanted:
            continue
        holders = known.salesforce.get(pasted.key, ()) if known is not None else ()
        # A form the full lookup would not send is not one to narrow it to.
        if holders and all(h.stored in pasted.wire_values for h in holders):
            for state in BOTH_STATES:
                forms = tuple(dict.fromkeys(h.stored for h in holders if h.archived == state))
                if forms:
                    values_by_key.append((forms, (state,)))
            expected += [(pasted.key, h.customer_id, h.archived) for h in holders]
        else:
            values_by_key.append((pasted.wire_values, BOTH_STATES))
    fetched = {(customer_id, archived) for _, customer_id, archived in expected}

    lists: list[PastedList] = []
    if ids := query.customer_ids:
        wanted = only.get(True, frozenset()) if only is not None else None
        held = known.customers if known is not None else {}
        lists.append(
            PastedList(
                is_customer_ids=True,
                keys=ids,
                shown_as={i: i for i in ids},
                batches=_batched(
                    [
                        ((i,), (held[i],) if i in held else BOTH_STATES)
                        for i in ids
                        if (wanted is None or i in wanted)
                        and not (i in held and (i, held[i]) in fetched)
                    ]
                ),
                key_of=customer_key,
                expected=tuple((i, i, held[i]) for i in ids if i in held),
            )
        )
    if salesforce_ids:
        lists.append(
            PastedList(
                is_customer_ids=False,
                keys=tuple(s.key for s in salesforce_ids),
                shown_as={s.key: s.typed for s in salesforce_ids},
                batches=_batched(values_by_key),
                key_of=salesforce_key,
                expected=tuple(expected),
            )
        )
    return lists


class Plan:
    """The API queries one pasted-ID search needs, and how their answers combine.

    Each pasted list is looked up on its own: the API ANDs its filters, so with both lists
    in one query every pair of batches would be a call (100 for 1,000 + 1,000 IDs), and
    the match report would call an ID "not found" whenever the other list excludes it.
    """

    def __init__(
        self,
        query: CustomerQuery,
        salesforce_ids: tuple[SalesforceId, ...],
        *,
        with_report: bool,
        known: KnownIds | None = None,
        only: dict[bool, frozenset[str]] | None = None,
    ) -> None:
        self.query = query
        self.lists = pasted_lists(query, salesforce_ids, known=known, only=only)
        shown, hidden = query.only_archived, not query.only_archived
        self.states = (shown, hidden) if with_report else (shown,)
        # The report ignores the ingest alias; the page honours it, so with an alias the
        # page needs lookups of its own (Metronome, not this code, decides what matches).
        passes: list[tuple[str, bool]] = [("", state) for state in self.states]
        if query.ingest_alias:
            passes.append((query.ingest_alias, shown))
        self.groups: list[tuple[str, bool, int]] = []  # (alias, state, list index)
        self.lookups: list[list[CustomerQuery]] = []
        for alias, state in passes:
            for index, pasted in enumerate(self.lists):
                self.groups.append((alias, state, index))
                self.lookups.append(
                    [
                        lookup(pasted.is_customer_ids, batch, alias, state)
                        for batch in pasted.batches[state]
                    ]
                )

    def pooled(self, results: list[tuple[Customer, ...]]) -> list[tuple[Customer, ...]]:
        """`results` with each customer-ID group also holding what the Salesforce lookups of
        the same alias and state found: a customer Metronome sent for its Salesforce ID is
        in that state, so it answers its pasted customer ID exactly as asking by ID would
        (`found` keeps only customers of a list's own keys)."""
        by_pass: dict[tuple[str, bool], list[Customer]] = {}
        for (alias, state, index), customers in zip(self.groups, results, strict=True):
            if not self.lists[index].is_customer_ids:
                by_pass.setdefault((alias, state), []).extend(customers)
        return [
            tuple({c.id: c for c in (*customers, *by_pass.get((alias, state), ()))}.values())
            if self.lists[index].is_customer_ids
            else customers
            for (alias, state, index), customers in zip(self.groups, results, strict=True)
        ]

    def unconfirmed(self, results: list[tuple[Customer, ...]]) -> dict[bool, frozenset[str]]:
        """The keys (by `is_customer_ids`) whose customers the index expected in a state
        asked, and the answers lack: the index is behind Metronome for them."""
        found = {
            (index, state): {c.id for c in customers}
            for (alias, state, index), customers in zip(self.groups, results, strict=True)
            if not alias
        }
        missed: dict[bool, frozenset[str]] = {}
        for index, pasted in enumerate(self.lists):
            keys = frozenset(
                key
                for key, customer_id, archived in pasted.expected
                if archived in self.states and customer_id not in found[index, archived]
            )
            if keys:
                missed[pasted.is_customer_ids] = keys
        return missed

    def found(
        self, results: list[tuple[Customer, ...]], alias: str, state: bool
    ) -> list[tuple[Customer, ...]]:
        """Per pasted list, the customers found that truly belong to one of its IDs (a
        customer an API answer adds for no pasted ID is dropped)."""
        found: list[tuple[Customer, ...]] = []
        for (group_alias, group_state, index), customers in zip(self.groups, results, strict=True):
            if group_alias == alias and group_state == state:
                pasted = self.lists[index]
                keys = set(pasted.keys)
                found.append(tuple(c for c in customers if pasted.key_of(c) in keys))
        return found

    def matches(self, results: list[tuple[Customer, ...]]) -> tuple[Customer, ...]:
        """The shown state's customers matching every pasted list (and the alias), in the
        first list's order: pasted order by batch, Metronome's order within one."""
        per_list = self.found(results, self.query.ingest_alias, self.query.only_archived)
        first, *others = per_list
        wanted = [{customer.id for customer in found} for found in others]
        return tuple(c for c in first if all(c.id in ids for ids in wanted))

    def report(self, results: list[tuple[Customer, ...]]) -> MatchReport:
        query = self.query
        shown_found = self.found(results, "", query.only_archived)
        hidden_found = self.found(results, "", not query.only_archived)
        matched: list[str] = []
        other_state: list[str] = []
        not_found: list[str] = []
        found: list[str] = []
        only_archived = 0
        matched_as: list[OtherForm] = []
        shared: list[SharedId] = []
        for pasted, shown, hidden in zip(self.lists, shown_found, hidden_found, strict=True):
            shownby_key = by_key(pasted, shown)
            hiddenby_key = by_key(pasted, hidden)
            for key in pasted.keys:
                as_pasted = pasted.shown_as[key]
                in_shown, in_hidden = shownby_key.get(key, []), hiddenby_key.get(key, [])
                if in_shown:
                    matched.append(as_pasted)
                elif in_hidden:
                    other_state.append(as_pasted)
                else:
                    not_found.append(as_pasted)
                archived, active = (
                    (in_shown, in_hidden) if query.only_archived else (in_hidden, in_shown)
                )
                if archived or active:
                    found.append(as_pasted)
                    only_archived += bool(archived) and not active
                if pasted.is_customer_ids:
                    continue
                stored_forms = dict.fromkeys(
                    c.salesforce_account_id for c in (*in_shown, *in_hidden)
                )
                matched_as += [
                    OtherForm(as_pasted, stored)
                    for stored in stored_forms
                    if stored and stored != as_pasted
                ]
                if len(in_shown) + len(in_hidden) > 1:
                    shared.append(SharedId(as_pasted, len(in_shown), len(in_hidden)))
        return MatchReport(
            pasted=sum(len(pasted.keys) for pasted in self.lists),
            matched=tuple(matched),
            other_state=tuple(other_state),
            not_found=tuple(not_found),
            other_state_is_archived=not query.only_archived,
            matched_as=tuple(matched_as),
            shared=tuple(shared),
            found=tuple(found),
            found_only_archived=only_archived,
        )


def by_key(pasted: PastedList, customers: Sequence[Customer]) -> dict[str, list[Customer]]:
    by_key: dict[str, list[Customer]] = {}
    for customer in customers:
        key = pasted.key_of(customer)
        if key is not None:
            by_key.setdefault(key, []).append(customer)
    return by_key


def lookup(
    is_customer_ids: bool, values: tuple[str, ...], alias: str, only_archived: bool
) -> CustomerQuery:
    return CustomerQuery(
        customer_ids=values if is_customer_ids else (),
        salesforce_account_ids=() if is_customer_ids else values,
        ingest_alias=alias,
        only_archived=only_archived,
    )


def look_up(
    client: MetronomeClient,
    query: CustomerQuery,
    salesforce_ids: tuple[SalesforceId, ...],
    *,
    with_report: bool,
    known: KnownIds | None,
) -> tuple[Plan, list[tuple[Customer, ...]]]:
    """The plan of a pasted-ID search and its lookups' answers: narrowed by what the index
    knows (`known`), then every form and state asked again for each pasted ID whose expected
    customers did not come back."""
    plan = Plan(query, salesforce_ids, with_report=with_report, known=known)
    results = plan.pooled(run(client, plan.lookups))
    missed = plan.unconfirmed(results) if known is not None else {}
    if not missed:
        return plan, results
    again = Plan(query, salesforce_ids, with_report=with_report, only=missed)
    more = run(client, again.lookups)
    merged = [
        tuple({c.id: c for c in (*first, *second)}.values())
        for first, second in zip(results, more, strict=True)
    ]
    return plan, plan.pooled(merged)


def run(client: MetronomeClient, groups: list[list[CustomerQuery]]) -> list[tuple[Customer, ...]]:
    """Every lookup of every group on the process's kept threads, at most
    MAX_LOOKUP_THREADS at once; each group's customers merged in batch order, each batch in
    Metronome's order, each customer once."""
    flat = [lookup for group in groups for lookup in group]
    if not flat:
        return [() for _ in groups]
    tasks = [functools.partial(fetch_all, client, lookup) for lookup in flat]
    answers = iter(lookup_pool.run_all(tasks, at_once=MAX_LOOKUP_THREADS))
    merged: list[tuple[Customer, ...]] = []
    for group in groups:
        seen: dict[str, Customer] = {}
        for _ in group:
            for customer in next(answers):
                seen.setdefault(customer.id, customer)
        merged.append(tuple(seen.values()))
    return merged


def fetch_all(client: MetronomeClient, query: CustomerQuery) -> list[Customer]:
    """Every customer of one API lookup, page after page in this thread (no pool in the
    pool), with the client's guards against cursor cycles and repeated pages; and since a
    lookup names at most 100 IDs, a lookup that goes on for pages and pages is a broken
    answer, not a long list."""
    customers: list[Customer] = []
    for page in client.follow_customers(query, MAX_PAGE_SIZE):
        customers.extend(page.rows)
        if len(customers) > MAX_CUSTOMERS_PER_LOOKUP:
            raise MalformedResponse(
                f"Metronome sent more than {MAX_CUSTOMERS_PER_LOOKUP:,} customers for at most "
                f"{MAX_IDS_PER_REQUEST} pasted IDs; the search could not be completed."
            )
    return customers
