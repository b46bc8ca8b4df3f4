from django.urls import path

from customers import saved_views, views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("index/sync/", views.sync_index, name="sync_index"),
    path("<uuid:customer_id>/", views.customer_detail, name="detail"),
    # Named saved views and the column chooser (customers/saved_views.py).
    path("columns/", saved_views.choose_columns, name="columns"),
    path("columns.css", saved_views.card_labels, name="card_labels"),
    path("v/new/", saved_views.save_new, name="save_view"),
    path("v/<slug:slug>/", saved_views.open_view, name="open_view"),
    path("v/<slug:slug>/edit/", saved_views.edit, name="edit_view"),
    path("v/<slug:slug>/save/", saved_views.save_changes, name="save_view_changes"),
    path("v/<slug:slug>/delete/", saved_views.delete, name="delete_view"),
    path("v/<slug:slug>/landing/", saved_views.set_landing, name="landing_view"),
    path("<uuid:customer_id>/invoices/", views.customer_invoices, name="invoices"),
]
