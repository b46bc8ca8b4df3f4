"""The customers page's filters: every query string is validated here before the service
module sees it. The field names are the API's, so a URL says exactly what was asked."""

import re
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from customers.metronome import MAX_PAGE_SIZE, CustomerQuery
from customers.urlstate import DEFAULT_PAGE_SIZE, PAGE_SIZES

MAX_PASTED_IDS = 1000
MAX_CURSOR_LENGTH = 2000
# More earlier cursors than this is no link the dashboard made (its links stay under
# urlstate.MAX_QUERY_STRING).
MAX_CURSOR_TRAIL = 1000
MAX_PAGE_NUMBER = 10**7

# Commas, whitespace and the semicolons some spreadsheets export: whatever a paste holds.
ID_SEPARATORS = re.compile(r"[\s,;]+")
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
TRUE_VALUES = {"true", "1", "on", "yes"}
FALSE_VALUES = {"false", "0", "off", "no", ""}


def parse_pasted_ids(text: str) -> tuple[str, ...]:
    """Split pasted text on any mix of commas, spaces, tabs and newlines; drop empties and
    repeats, keeping the order of first appearance."""
    return tuple(dict.fromkeys(part for part in ID_SEPARATORS.split(text) if part))


def _describe(bad: list[str]) -> str:
    shown = ", ".join(f"“{value[:40]}”" for value in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return shown + more


class PastedIdsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"})

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(required=False, strip=True, **kwargs)

    # A CharField whose value is the tuple of IDs: the stubs type CharField's value as text.
    def to_python(self, value: Any) -> tuple[str, ...]:  # type: ignore[override]
        return parse_pasted_ids(super().to_python(value) or "")

    def validate(self, value: tuple[str, ...]) -> None:
        super().validate(value)
        if len(value) > MAX_PASTED_IDS:
            raise ValidationError(
                f"{len(value):,} {self.kind}s were pasted; search at most {MAX_PASTED_IDS:,} "
                "at a time."
            )

    def prepare_value(self, value: Any) -> str:
        # Redisplayed one per line, whatever separators the person pasted.
        ids = parse_pasted_ids(value) if isinstance(value, str) else value
        return "\n".join(ids) if ids else ""


class CustomerIdsField(PastedIdsField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kind="customer ID", **kwargs)

    def clean(self, value: Any) -> tuple[str, ...]:
        ids: tuple[str, ...] = super().clean(value)
        canonical: list[str] = []
        bad: list[str] = []
        for raw in ids:
            try:
                canonical.append(str(uuid.UUID(raw)))
            except ValueError:
                bad.append(raw)
        if bad:
            raise ValidationError(
                f"Not a Metronome customer ID (a UUID such as "
                f"0c5e4f3a-3f7c-4b8e-9a8e-2f4a1c9d7b6e): {_describe(bad)}."
            )
        return tuple(dict.fromkeys(canonical))


class SalesforceIdsField(PastedIdsField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kind="Salesforce account ID", **kwargs)

    def clean(self, value: Any) -> tuple[str, ...]:
        ids: tuple[str, ...] = super().clean(value)
        bad = [raw for raw in ids if not SALESFORCE_ID.fullmatch(raw)]
        if bad:
            raise ValidationError(
                f"Not a Salesforce account ID (15 or 18 letters and digits, such as "
                f"001Dn00000AbCdEIAZ): {_describe(bad)}."
            )
        return ids


class ArchivedField(forms.ChoiceField):
    """`only_archived` as the API names it; accepts true/false/1/0/on/off from any URL."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[("false", "Active"), ("true", "Archived")],
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
        raise ValidationError("Choose Active or Archived.")

    def clean(self, value: Any) -> bool:
        return bool(super().clean(value) == "true")


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


class CustomerFilterForm(forms.Form):
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or DEFAULT_PAGE_SIZE

    def query(self) -> CustomerQuery:
        data = self.cleaned_data
        return CustomerQuery(
            customer_ids=data["customer_ids"],
            salesforce_account_ids=data["salesforce_account_ids"],
            ingest_alias=data["ingest_alias"],
            only_archived=data["only_archived"],
        )
