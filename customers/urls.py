from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("match-report.csv", views.match_report_export, name="export_report"),
    path("index/sync/", views.sync_index, name="sync_index"),
    path("<uuid:customer_id>/", views.customer_detail, name="detail"),
    path("<uuid:customer_id>/invoices/", views.customer_invoices, name="invoices"),
]
