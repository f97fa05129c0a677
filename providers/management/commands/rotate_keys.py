"""Re-encrypt every stored upstream key under the first FIELD_ENCRYPTION_KEY."""

from django.core.management.base import BaseCommand, CommandError

from providers import keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key with the first key of FIELD_ENCRYPTION_KEY. To rotate: put a new key "
        "first (FIELD_ENCRYPTION_KEY=new,old), restart, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        try:
            count = keys.rotate_all()
        except keys.EncryptionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {count} stored key{'s' * (count != 1)} with the first FIELD_ENCRYPTION_KEY. "
                "Older keys in FIELD_ENCRYPTION_KEY are no longer needed for them and can be removed."
            )
        )
