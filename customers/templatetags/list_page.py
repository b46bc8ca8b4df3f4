"""The customers page: the `list_page` tag that draws its body (a Jinja2 template) inside
base.html, and the filters its Jinja2 templates use (dashboard/jinja_env.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django import template
from django.forms import BoundField
from django.template import engines
from django.template.context import Context
from django.utils.html import escape
from django.utils.safestring import SafeString

from customers.urlstate import SortLink

register = template.Library()


def paste_box(field: BoundField, placeholder: str) -> SafeString:
    """A paste box one line high until used: the stylesheet grows it while focused or while
    it holds text, which CSS can tell only by its placeholder (`:placeholder-shown`)."""
    return field.as_widget(attrs={"rows": "1", "placeholder": placeholder})


SORT_LABELS = {"name": "Name", "created": "Created", "updated": "Updated"}


def sort_choices(links: Mapping[str, SortLink]) -> list[tuple[str, str, SortLink]]:
    """(column, label, link) for the cards' sort buttons, in the table's column order."""
    return [
        (column, label, links[column]) for column, label in SORT_LABELS.items() if column in links
    ]


@register.simple_tag(takes_context=True)
def list_page(context: Context) -> SafeString:
    """The customers page's body (templates/jinja2/customers/list.html), rendered by the
    Jinja2 engine inside base.html: the Django engine took about 3 ms of a 7 ms page for it
    (bench/README.md). Jinja2 escapes every value it prints, so its HTML is safe."""
    body = engines["jinja2"].get_template("customers/list.html")
    names = cast(dict[str, Any], context.flatten())  # the view's names: str keys only
    return SafeString(body.render(names, context.get("request")))


def plural(count: int) -> str:
    """Django's `pluralize`: "s" unless the count is one."""
    return "" if count == 1 else "s"


# The match report's ID lists, by the hook each item carries (the page's contract).
ID_ITEM_HOOKS = {"matched": "data-matched-id", "unmatched": "data-unmatched-id"}


def id_items(ids: Sequence[str], hook: str) -> SafeString:
    """One `<li>` per pasted ID, escaped once: a 300-ID report's list costs the Django engine
    about 10 µs a value in a `{% for %}` loop, and `format_html` per item about half that."""
    attribute = ID_ITEM_HOOKS[hook]
    return SafeString(
        "".join(
            f'<li {attribute}="{value}"><code>{value}</code></li>' for value in map(escape, ids)
        )
    )
