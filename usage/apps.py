"""What the upstream calls cost: usage rows, quotas and rate limits, the Usage page."""

from django.apps import AppConfig


class UsageConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
