from django.conf import settings

import dashboard


def dashboard_settings(request) -> dict:
    return {
        "sandbox_mode": settings.METRONOME_SANDBOX,
        "dashboard_version": dashboard.__version__,
        "metronome_app_url": settings.METRONOME_APP_URL,
        "salesforce_base_url": settings.SALESFORCE_BASE_URL,
    }
