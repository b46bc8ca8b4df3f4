from django.urls import path

from customers import customer_views, saved_views, views
from customers.customer_page import REGIONS

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("match-report.csv", views.match_report_export, name="export_report"),
    path("index/sync/", views.sync_index, name="sync_index"),
    path("<uuid:customer_id>/", customer_views.customer_detail, name="detail"),
    # One URL per region of the customer view: contracts/, balances/, alerts/, usage/,
    # invoices/ (each loaded and retried on its own by htmx).
    *(
        path(
            f"<uuid:customer_id>/{region}/",
            customer_views.customer_region,
            {"region": region},
            name=region,
        )
        for region in REGIONS
    ),
    path(
        "<uuid:customer_id>/invoices/<uuid:invoice_id>/",
        customer_views.invoice_detail,
        name="invoice",
    ),
    path(
        "<uuid:customer_id>/invoices/<uuid:invoice_id>/pdf",
        customer_views.invoice_pdf,
        name="invoice_pdf",
    ),
    # Named saved views and the column chooser (customers/saved_views.py).
    path("columns/", saved_views.choose_columns, name="columns"),
    path("columns.css", saved_views.card_labels, name="card_labels"),
    path("v/new/", saved_views.save_new, name="save_view"),
    path("v/<slug:slug>/", saved_views.open_view, name="open_view"),
    path("v/<slug:slug>/edit/", saved_views.edit, name="edit_view"),
    path("v/<slug:slug>/save/", saved_views.save_changes, name="save_view_changes"),
    path("v/<slug:slug>/delete/", saved_views.delete, name="delete_view"),
    path("v/<slug:slug>/landing/", saved_views.set_landing, name="landing_view"),
]
