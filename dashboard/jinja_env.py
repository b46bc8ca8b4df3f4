"""The Jinja2 environment of the customers page (templates/jinja2/customers/): the page's body
and its swappable regions. Django's engine drew them in about 3 ms of a 7 ms page; Jinja2
prints the same markup in a fraction of that (bench/README.md). The layout around them
(base.html) and every other page stay Django templates."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from jinja2 import Environment

from customers.templatetags import list_page


def url(name: str, *args: Any) -> str:
    """`{% url %}`: a named URL, with positional arguments."""
    return reverse(name, args=args or None)


def environment(**options: Any) -> Environment:
    options.pop("autoescape", None)  # always on: every value printed is escaped
    env = Environment(autoescape=True, **options)
    env.globals["url"] = url
    env.filters.update(
        paste_box=list_page.paste_box,
        sort_choices=list_page.sort_choices,
        id_items=list_page.id_items,
        plural=list_page.plural,
    )
    return env
