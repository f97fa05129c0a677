"""The upstreams: the HTTP client, the API keys and the model catalogue."""

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


def _catalogue_changed(sender, **kwargs) -> None:
    from providers.models import _forget_catalogue

    _forget_catalogue()


def _keys_changed(sender, **kwargs) -> None:
    from providers.keys import forget_assignments

    forget_assignments()


class ProvidersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "providers"

    def ready(self):
        from django.contrib.auth.models import Group

        from providers.models import ChatModel, ProviderKey

        # The cached catalogue carries each model's groups (providers.catalogue): the admin saves
        # them after the model itself, and deleting a group removes it from every model.
        m2m_changed.connect(_catalogue_changed, sender=ChatModel.groups.through, dispatch_uid="catalogue-groups")
        post_delete.connect(_catalogue_changed, sender=Group, dispatch_uid="catalogue-group-deleted")
        # Which key a person uses is cached (providers.keys.assignments): any change to a key, its
        # people or its groups clears it. A person's own groups are read each time, not cached.
        for signal in (post_save, post_delete):
            signal.connect(_keys_changed, sender=ProviderKey, dispatch_uid=f"keys-{signal is post_save}")
        for through in (ProviderKey.users.through, ProviderKey.groups.through):
            m2m_changed.connect(_keys_changed, sender=through, dispatch_uid=f"keys-{through.__name__}")
