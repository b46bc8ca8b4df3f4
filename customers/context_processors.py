from django.conf import settings
from django.http import HttpRequest

import dashboard


def dashboard_settings(request: HttpRequest) -> dict[str, object]:
    return {
        "sandbox_mode": settings.METRONOME_SANDBOX,
        "dashboard_version": dashboard.__version__,
        "metronome_app_url": settings.METRONOME_APP_URL,
        "salesforce_base_url": settings.SALESFORCE_BASE_URL,
    }
