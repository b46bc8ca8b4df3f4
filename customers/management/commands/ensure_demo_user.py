from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

DEMO_USERS = {
    # username: (group, is_superuser)
    "demo": ("Finance", True),
    "support": ("Support", False),
    "finance": ("Finance", False),
}
DEMO_PASSWORD = "metronome-demo"  # noqa: S105 (a published demo login, refused with a real token)


class Command(BaseCommand):
    help = "Create the demo logins for a local run on the sandbox (never with a real token)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.METRONOME_SANDBOX:
            raise CommandError(
                "Refusing to create demo logins: METRONOME_BEARER_TOKEN is set, so this "
                "dashboard shows real customers. Use `manage.py createsuperuser` instead."
            )
        User = get_user_model()
        for username, (group_name, is_superuser) in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            # Reset on every run, so the password printed below is always the one that works.
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = is_superuser
            user.save()
            user.groups.add(Group.objects.get(name=group_name))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo logins (password {DEMO_PASSWORD!r}): demo (superuser), "
                "support (Support group), finance (Finance group)."
            )
        )
