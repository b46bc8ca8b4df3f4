from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Metronome customers"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from customers import saved_view_rules, wiring

        saved_view_rules.connect_signals()

        def drop_client_on_metronome_settings(setting: str, **kwargs: object) -> None:
            # Tests override the Metronome settings; the next request builds a fresh client.
            if setting.startswith(("METRONOME_", "SANDBOX_")):
                wiring.reset_client()

        setting_changed.connect(drop_client_on_metronome_settings, weak=False)
