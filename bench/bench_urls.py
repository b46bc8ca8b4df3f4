"""The dashboard's URLs plus the bare-view baseline at /bench/bare/."""

from django.urls import path

from bench.bare_view import bare_customers
from dashboard.urls import urlpatterns as dashboard_urlpatterns

urlpatterns = [*dashboard_urlpatterns, path("bench/bare/", bare_customers)]
