from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import URLPattern, include, path

from customers import login_throttle, saved_views


@login_not_required
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Browsers ask for /favicon.ico on their own (downloads, non-HTML pages), logged in or not.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


# Django's auth URLs, with the password change throttled like the login.
account_urls: list[URLPattern] = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password_change/",
        login_throttle.ThrottledPasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
# Resetting a password sends email: without email configured the pages do not exist.
# (Django's reset views need no login.)
password_reset_urls: list[URLPattern] = [
    path(
        "password_reset/",
        login_throttle.ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
if settings.PASSWORD_RESET_ENABLED:
    account_urls += password_reset_urls
# Names the group that grants what was refused (Django's own 403 cannot know it).
handler403 = "customers.errors.permission_denied"

urlpatterns = [
    path("", saved_views.landing, name="home"),
    path("customers/", include("customers.urls")),
    path("accounts/", include(account_urls)),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
]
