from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from customers import views


@login_not_required
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Browsers ask for /favicon.ico on their own (downloads, non-HTML pages), logged in or not.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


# Names the group that grants what was refused (Django's own 403 cannot know it).
handler403 = "customers.errors.permission_denied"

urlpatterns = [
    path("", views.home, name="home"),
    path("customers/", include("customers.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
]
