from django.contrib import admin
from django.urls import include, path

from customers import views

urlpatterns = [
    path("", views.home, name="home"),
    path("customers/", include("customers.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
