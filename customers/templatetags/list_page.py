"""Small helpers of the customers list page (templates/customers/list.html)."""

from __future__ import annotations

from collections.abc import Mapping

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

from customers.urlstate import SortLink

register = template.Library()


@register.filter
def paste_box(field: BoundField, placeholder: str) -> SafeString:
    """A paste box one line high until used: the stylesheet grows it while focused or while
    it holds text, which CSS can tell only by its placeholder (`:placeholder-shown`)."""
    return field.as_widget(attrs={"rows": "1", "placeholder": placeholder})


SORT_LABELS = {"name": "Name", "created": "Created", "updated": "Updated"}


@register.filter
def sort_choices(links: Mapping[str, SortLink]) -> list[tuple[str, str, SortLink]]:
    """(column, label, link) for the cards' sort buttons, in the table's column order."""
    return [
        (column, label, links[column]) for column, label in SORT_LABELS.items() if column in links
    ]
