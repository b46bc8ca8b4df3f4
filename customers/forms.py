"""The customers page's filters: every query string is validated here before the service
module sees it. The field names are the API's, so a URL says exactly what was asked."""

from collections.abc import Callable, Sequence
from datetime import date
from functools import cached_property
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import renderers

from customers import pasted, salesforce
from customers.index.query import IndexQuery
from customers.index.search import Archived, Billable, IndexFilters, Sort
from customers.metronome import MAX_PAGE_SIZE, CustomerQuery
from customers.pasted import Ignored, PastedIds
from customers.salesforce import SalesforceId
from customers.urlstate import DEFAULT_PAGE_SIZE, INDEX_PARAMS, ORDERS, PAGE_SIZES, ListState

MAX_PASTED_IDS = 1000
# Reading a paste costs about 1 ms for every 1,000 characters of the worst text, and a
# 1,000-row report of seven columns is about 87,000: more than this is refused unread.
MAX_PASTE_CHARACTERS = 100_000
MAX_CURSOR_LENGTH = 2000
# More earlier cursors than this is no link the dashboard made (its links stay under
# urlstate.MAX_QUERY_STRING).
MAX_CURSOR_TRAIL = 1000
MAX_PAGE_NUMBER = 10**7
MAX_SEARCH_LENGTH = 200
NO_INDEX_YET = (
    "The customer index has not been built yet, so name search, these filters and sorting "
    "are not available. Run `manage.py sync_customers` to build it."
)

# One word for yes and one for no in every parameter: links say `true` and `false`; the
# other spellings are read so that older links and hand-written ones keep working.
TRUE_VALUES = {"true", "1", "on", "yes"}
FALSE_VALUES = {"false", "0", "off", "no", ""}
# `billable=true` and `billable=false` say the same as everywhere else: billable, unbillable.
BILLABLE_SYNONYMS = {
    **{word: Billable.BILLABLE.value for word in TRUE_VALUES},
    **{word: Billable.UNBILLABLE.value for word in FALSE_VALUES - {""}},
    "not-set": Billable.NOT_SET.value,
    "unset": Billable.NOT_SET.value,
}


def _describe(values: Sequence[str]) -> str:
    shown = ", ".join(f"“{value[:40]}”" for value in values[:5])
    more = f" and {len(values) - 5:,} more" if len(values) > 5 else ""
    return shown + more


class PastedIdsField(forms.CharField):
    """A paste box: pulls the IDs out of whatever was pasted (see customers/pasted.py) and
    cleans to the normalised IDs. What is not an ID is ignored and reported through the
    form's `ignored_values`, never an error; an error only when a box with text holds no ID
    at all, more than MAX_PASTED_IDS, or more text than MAX_PASTE_CHARACTERS, which is not
    read at all (and redisplayed as pasted, so nothing is lost)."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"})

    def __init__(
        self, *, kind: str, extract: Callable[[str], PastedIds], what_fits: str, **kwargs: Any
    ) -> None:
        self.kind = kind
        self.extract = extract
        self.what_fits = what_fits
        self._last_read: tuple[str, PastedIds] | None = None
        super().__init__(required=False, strip=True, **kwargs)

    def read(self, text: str) -> PastedIds:
        """`extract`, remembered for the last text: cleaning, the report of ignored values and
        redisplaying the box each read the same paste (3 x 300 IDs per page). A form's fields
        are its own copies, so what is remembered lives as long as one request's form."""
        text = text.strip()
        if len(text) > MAX_PASTE_CHARACTERS:
            return PastedIds()
        if self._last_read is None or self._last_read[0] != text:
            self._last_read = (text, self.extract(text))
        return self._last_read[1]

    def clean(self, value: Any) -> tuple[str, ...]:
        text = super().clean(value)  # a stripped string; a NUL is refused here
        if len(text) > MAX_PASTE_CHARACTERS:
            raise ValidationError(
                f"This box holds {len(text):,} characters; paste at most "
                f"{MAX_PASTE_CHARACTERS:,} at a time. A column of {MAX_PASTED_IDS:,} IDs is "
                f"about {MAX_PASTED_IDS * 19:,}: paste the ID column rather than the whole report."
            )
        found = self.read(text)
        if text and not found.ids:
            found_in = [item.value for item in found.ignored]
            raise ValidationError(
                f"No {self.kind} found"
                + (f" in {_describe(found_in)}" if found_in else "")
                + f". {self.what_fits}"
            )
        if len(found.ids) > MAX_PASTED_IDS:
            raise ValidationError(
                f"{len(found.ids):,} {self.kind}s were pasted; search at most "
                f"{MAX_PASTED_IDS:,} at a time."
            )
        # What links, stored searches and the redisplayed box carry is the compacted paste,
        # which quoting can make longer than the paste: it must be readable again too.
        if len(found.as_text()) > MAX_PASTE_CHARACTERS:
            raise ValidationError(
                f"This box holds more than can be kept: {len(found.as_text()):,} characters "
                f"once its values are quoted, of at most {MAX_PASTE_CHARACTERS:,}. Paste the "
                "ID column rather than the whole report."
            )
        return found.ids

    def prepare_value(self, value: Any) -> str:
        # Redisplayed one value a line: the IDs as pasted, then what was ignored, so that
        # searching the box again (a reload, then a change of page size) reports the same;
        # a box with no ID in it keeps its text, so it can be corrected.
        if isinstance(value, str):
            found = self.read(value)
            return found.as_text("\n") if found.ids else value
        return "\n".join(value) if value else ""


class CustomerIdsField(PastedIdsField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            kind="Metronome customer ID",
            extract=pasted.extract_customer_ids,
            what_fits=(
                "A customer ID is a UUID such as 0c5e4f3a-3f7c-4b8e-9a8e-2f4a1c9d7b6e; "
                "a link to the customer in Metronome works too."
            ),
            **kwargs,
        )


class SalesforceIdsField(PastedIdsField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            kind="Salesforce account ID",
            extract=pasted.extract_salesforce_ids,
            what_fits=(
                "A Salesforce ID has 15 or 18 letters and digits, such as 001xx000003DHurAAG; "
                "a link to the record in Salesforce works too."
            ),
            **kwargs,
        )


class ArchivedField(forms.ChoiceField):
    """`only_archived` as the API names it; accepts true/false/1/0/on/off from any URL, and
    `all`, which only the index can answer. Cleans to whether archived customers are asked
    for; the form's `archived_state` tells All apart."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[("false", "Active"), ("true", "Archived"), ("all", "All")],
            required=False,
            widget=forms.RadioSelect,
            **kwargs,
        )

    def to_python(self, value: Any) -> str:
        text = str(value or "").strip().lower()
        if text in TRUE_VALUES:
            return "true"
        if text in FALSE_VALUES:
            return "false"
        if text == "all":
            return "all"
        raise ValidationError("Choose Active, Archived or All.")

    def clean(self, value: Any) -> bool:
        return bool(super().clean(value) == "true")


def _says_yes(value: Any) -> bool:
    return value is True or str(value or "").strip().lower() in TRUE_VALUES


class YesNoCheckbox(forms.CheckboxInput):
    """A checkbox that hands the field the word the URL gave, for it to check, and is
    ticked only by a yes (`false` ticks no box)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, check_test=_says_yes)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)


class YesNoField(forms.BooleanField):
    """A yes/no parameter: `true` or `false` (or an older link's 1/0, on/off, yes/no);
    anything else is an error rather than a silent yes."""

    widget = YesNoCheckbox

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def to_python(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value or "").strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise ValidationError("Use true or false.")


class BillableField(forms.MultipleChoiceField):
    """Any of billable, unbillable and not set (`billable=unbillable&billable=not_set`, or
    comma-separated); `true` and `false` read as billable and unbillable."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[
                (Billable.BILLABLE.value, "Billable"),
                (Billable.UNBILLABLE.value, "Unbillable"),
                (Billable.NOT_SET.value, "Not set"),
            ],
            required=False,
            **kwargs,
        )

    def to_python(self, value: Any) -> list[str]:
        values = [value] if isinstance(value, str) else list(value or [])
        words = [word.strip().lower() for text in values for word in str(text).split(",")]
        return list(dict.fromkeys(BILLABLE_SYNONYMS.get(word, word) for word in words if word))


class CursorTrailField(forms.Field):
    """The cursors of the pages before this one, oldest first: what makes Previous work after
    a reload or from a shared link, since Metronome's cursors only go forwards."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        values = [v for v in (value or []) if v]
        # A NUL can't be stored in PostgreSQL, where a long trail is saved as a search.
        if len(values) > MAX_CURSOR_TRAIL or any(
            len(v) > MAX_CURSOR_LENGTH or "\x00" in v for v in values
        ):
            raise ValidationError("That page link is damaged. Start from page one.")
        return values


class CustomFieldFilter(forms.CharField):
    """`key=value`: customers whose custom field `key` is exactly `value`."""

    def clean(self, value: Any) -> tuple[str, str] | None:
        text = super().clean(value)
        if not text:
            return None
        key, equals, wanted = text.partition("=")
        if not equals or not key.strip():
            raise ValidationError("Write the custom field as key=value, such as region=emea.")
        return key.strip(), wanted.strip()


class DayField(forms.DateField):
    widget = forms.DateInput(attrs={"type": "date"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, input_formats=["%Y-%m-%d"], **kwargs)

    def clean(self, value: Any) -> Any:
        day = super().clean(value)
        # The index searches up to the day after an end day: 9999-12-31 has none.
        if day is not None and not date(1900, 1, 1) <= day <= date(9000, 12, 31):
            raise ValidationError("Choose a day between 1900 and 9000.")
        return day


class CustomerFilterForm(forms.Form):
    # Its widgets are drawn on every list page: Django's own Jinja2 templates for them draw
    # the same HTML in about two thirds of the time (bench/README.md). This form only: the
    # admin's widgets exist as Django templates alone.
    default_renderer = renderers.Jinja2()

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=MAX_SEARCH_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    salesforce_account_ids = SalesforceIdsField(label="Salesforce account IDs")
    customer_ids = CustomerIdsField(label="Customer IDs")
    ingest_alias = forms.CharField(label="Ingest alias", required=False, max_length=500)
    only_archived = ArchivedField(label="Show")
    limit = forms.IntegerField(
        label="Rows per page",
        required=False,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        widget=forms.Select(choices=[(size, str(size)) for size in PAGE_SIZES]),
    )
    next_page = forms.CharField(
        required=False, max_length=MAX_CURSOR_LENGTH, widget=forms.HiddenInput
    )
    prev = CursorTrailField(required=False)
    page = forms.IntegerField(
        label="Page number",
        required=False,
        min_value=1,
        max_value=MAX_PAGE_NUMBER,
        widget=forms.HiddenInput,
    )
    # The dashboard's signature of `page` beside a cursor (urlstate.page_links): a link
    # whose position nobody vouches for shows its rows unnumbered, so a wrong one is ignored.
    page_sig = forms.CharField(required=False, widget=forms.HiddenInput)
    # Ask Metronome again rather than answer from the cache; never kept in links.
    refresh = YesNoField(widget=forms.HiddenInput)
    order = forms.ChoiceField(
        label="Order",
        required=False,
        choices=[("", "Creation order"), *ORDERS],
    )
    # Only the index answers these (see `uses_index`).
    billable = BillableField(label="Billable status")
    created_from = DayField(label="Created from")
    created_to = DayField(label="Created to")
    updated_from = DayField(label="Updated from")
    updated_to = DayField(label="Updated to")
    no_salesforce_id = YesNoField(label="Has no Salesforce ID")
    custom_field = CustomFieldFilter(
        label="Custom field", required=False, max_length=500, help_text="key=value"
    )
    sort = forms.ChoiceField(
        label="Sort", required=False, choices=[("", "")] + [(s.value, s.value) for s in Sort]
    )

    def __init__(self, *args: Any, index_ready: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index_ready = index_ready
        # A URL may ask for any size from 1 to 100; show it selected rather than lie.
        requested = self.data.get("limit", "") if self.is_bound else ""
        if requested.isdigit() and 1 <= int(requested) <= MAX_PAGE_SIZE:
            sizes = sorted({*PAGE_SIZES, int(requested)})
            self.fields["limit"].widget.choices = [(size, str(size)) for size in sizes]

    @property
    def archived_choice(self) -> str:
        """The toggle's position, also when another field is invalid."""
        try:
            return ArchivedField().to_python(self.data.get("only_archived"))
        except ValidationError:
            return "false"

    @cached_property
    def pasted(self) -> dict[str, PastedIds]:
        """What each paste box held: the IDs found, the values ignored and, for Salesforce
        IDs, the conversions made. Read from the submitted text, so it is there whether or
        not the form is valid."""
        return {
            name: field.read(str(self[name].data or ""))
            for name, field in self.fields.items()
            if isinstance(field, PastedIdsField)
        }

    @property
    def ignored_values(self) -> list[tuple[str, tuple[Ignored, ...]]]:
        """(box label, the pasted values that are not IDs) for each box that had some: to be
        reported with the results, never an error."""
        return [
            (str(self.fields[name].label), found.ignored)
            for name, found in self.pasted.items()
            if found.ignored
        ]

    @property
    def repeated_total(self) -> int:
        """How many pasted IDs repeated one already pasted (in any of its forms), together:
        each customer is looked up and listed once, and the report says how many lines that
        folded away, so a column can be reconciled line by line."""
        return sum(found.repeats for found in self.pasted.values())

    @property
    def ignored_total(self) -> int:
        """How many distinct values the paste boxes ignored, together."""
        return sum(len(ignored) for _, ignored in self.ignored_values)

    @property
    def salesforce_ids(self) -> tuple[SalesforceId, ...]:
        """The pasted Salesforce IDs as read, one per searched key, in the query's order:
        what the lookup sends (every form Metronome may store) and the report shows."""
        found = self.pasted["salesforce_account_ids"]
        return tuple(salesforce.normalise(typed) for typed in found.as_pasted)

    @property
    def pasted_text(self) -> dict[str, str]:
        """Each paste box compacted (`PastedIds.as_text`): what links and stored searches
        carry, so every page of a search reports what was ignored and how IDs were pasted."""
        return {name: found.as_text() for name, found in self.pasted.items() if found.ids}

    @property
    def archived_state(self) -> Archived:
        choice = self.archived_choice
        if choice == "all":
            return Archived.ALL
        return Archived.ARCHIVED if choice == "true" else Archived.ACTIVE

    @property
    def more_filters_used(self) -> bool:
        """Whether a "More filters" field holds something: the fold then starts open."""
        names = ("created_from", "created_to", "updated_from", "updated_to", "custom_field")
        return any(self.data.get(name) for name in names) or self._says_yes("no_salesforce_id")

    @property
    def folded_filters_in_use(self) -> list[str]:
        """What the fields in the page's fold ("Pasted IDs, ingest alias and more filters")
        hold, as its summary names them: the fold starts closed on a filtered list, and a
        list cut short by a filter nobody can see looks like missing customers."""
        in_use = [
            str(self.fields[name].label)
            for name in ("salesforce_account_ids", "customer_ids", "ingest_alias")
            if self._values(name)
        ]
        for label, names in (
            ("Created", ("created_from", "created_to")),
            ("Updated", ("updated_from", "updated_to")),
        ):
            if any(self._values(name) for name in names):
                in_use.append(f"{label} dates")
        if self._values("custom_field"):
            in_use.append(str(self.fields["custom_field"].label))
        if self._values("no_salesforce_id") and self._says_yes("no_salesforce_id"):
            in_use.append(str(self.fields["no_salesforce_id"].label))
        return in_use

    def _says_yes(self, name: str) -> bool:
        return str(self.data.get(name, "")).strip().lower() not in FALSE_VALUES

    def _values(self, name: str) -> list[str]:
        getlist = getattr(self.data, "getlist", None)
        values = getlist(name) if getlist else [self.data.get(name, "")]
        return [str(value).strip() for value in values if str(value or "").strip()]

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or DEFAULT_PAGE_SIZE

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for start, end, label in (
            ("created_from", "created_to", "Created"),
            ("updated_from", "updated_to", "Updated"),
        ):
            if data.get(start) and data.get(end) and data[start] > data[end]:
                self.add_error(end, f"{label} to must not be before {label.lower()} from.")
        if not self.index_ready and self.uses_index:
            raise ValidationError(NO_INDEX_YET)
        return data

    @property
    def uses_index(self) -> bool:
        """Whether the page is answered from the customer index: a search, a filter or a
        sort the API lacks, or All. Read from the submitted values, valid or not."""
        if self._says_yes("no_salesforce_id"):
            return True
        return self.archived_choice == "all" or any(
            self._values(name)
            for name in INDEX_PARAMS
            if name != "no_salesforce_id"  # a yes/no, read above: "false" is no filter
        )

    def index_query(self) -> IndexQuery:
        data = self.cleaned_data
        return IndexQuery(
            q=data["q"],
            filters=IndexFilters(
                archived=self.archived_state,
                billable=frozenset(Billable(value) for value in data["billable"]),
                created_from=data["created_from"],
                created_to=data["created_to"],
                updated_from=data["updated_from"],
                updated_to=data["updated_to"],
                no_salesforce_id=data["no_salesforce_id"],
                custom_field=data["custom_field"],
                customer_ids=data["customer_ids"],
                salesforce_account_ids=data["salesforce_account_ids"],
                ingest_alias=data["ingest_alias"],
            ),
            sort=Sort(data["sort"]) if data["sort"] else None,
        )

    def query(self) -> CustomerQuery:
        data = self.cleaned_data
        return CustomerQuery(
            customer_ids=data["customer_ids"],
            salesforce_account_ids=data["salesforce_account_ids"],
            ingest_alias=data["ingest_alias"],
            only_archived=data["only_archived"],
        )

    def state(self, *, saved_key: str | None = None, toggle_in_url: bool = False) -> ListState:
        """The validated page state: what every link, the CSV and the search read."""
        data = self.cleaned_data
        return ListState(
            query=self.query(),
            limit=data["limit"],
            index_query=self.index_query() if self.uses_index else None,
            saved_key=saved_key,
            pasted_text=self.pasted_text,
            toggle_in_url=toggle_in_url,
            order=data["order"],
            cursor=data["next_page"] or None,
            trail=tuple(data["prev"]),
            page=data["page"],
            page_sig=data["page_sig"],
            refresh=data["refresh"],
        )
