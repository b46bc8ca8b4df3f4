"""Static files in production: collected, hashed and compressed by `collectstatic`, which
`make install` and the container build run.

The process refuses to start when they were never collected (see `check_collected`): every
page would otherwise be a 500. A file added since the last collection (a pull without
`make install`) is not in the manifest: its unhashed URL is used, and WhiteNoise serves it
from its source folder (WHITENOISE_USE_FINDERS), rather than failing the page.
"""

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.exceptions import ImproperlyConfigured
from whitenoise.storage import CompressedManifestStaticFilesStorage

COLLECT_COMMAND = "make install (or: python manage.py collectstatic --noinput)"


class ForgivingManifestStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            # Not in the manifest ("Missing staticfiles manifest entry"): collected before
            # the file existed. Its plain URL, which WhiteNoise serves from the source folder.
            return name


def check_collected() -> None:
    """Raise ImproperlyConfigured, naming the command, when production static files are
    missing. Called once at start-up by dashboard.wsgi."""
    storage = staticfiles_storage
    if not isinstance(storage, ForgivingManifestStorage):
        return  # DEBUG: served straight from the source folders.
    if not storage.exists(storage.manifest_name):
        raise ImproperlyConfigured(
            f"Static files have not been collected into {settings.STATIC_ROOT}: "
            f"run {COLLECT_COMMAND}."
        )
