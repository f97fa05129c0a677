"""The upstreams: the HTTP client, the API keys and the model catalogue."""

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "providers"
