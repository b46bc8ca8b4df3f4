import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = get_wsgi_application()

# Refuse to start, naming the fix, rather than serve a 500 on every page.
from dashboard.staticfiles import check_collected  # noqa: E402  (needs settings loaded)

check_collected()
