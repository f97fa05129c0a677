"""The upstreams: the HTTP client, the API keys and the model catalogue."""

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete


def _catalogue_changed(sender, **kwargs) -> None:
    from providers.models import _forget_catalogue

    _forget_catalogue()


class ProvidersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "providers"

    def ready(self):
        from django.contrib.auth.models import Group

        from providers.models import ChatModel

        # The cached catalogue carries each model's groups (providers.catalogue): the admin saves
        # them after the model itself, and deleting a group removes it from every model.
        m2m_changed.connect(_catalogue_changed, sender=ChatModel.groups.through, dispatch_uid="catalogue-groups")
        post_delete.connect(_catalogue_changed, sender=Group, dispatch_uid="catalogue-group-deleted")
