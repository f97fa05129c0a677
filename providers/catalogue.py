"""The model catalogue as the chat reads it: which models are offered, to whom, and with what defaults."""

from django.conf import settings
from django.core.cache import cache

from providers.models import CATALOGUE_CACHE_KEY, ChatModel

CATALOGUE_SECONDS = 30


def chat_catalogue() -> dict[str, ChatModel]:
    """Every model of the catalogue by upstream id, kept in the cache: each chat page and each
    reply reads it, and it changes only when an admin edits it (ChatModel.save and a change of its
    groups clear it; other processes without a shared cache see the change within CATALOGUE_SECONDS).

    Each entry carries `access_group_ids`, the groups that may use it, so asking who may use a
    model costs no query for a model open to everyone and one for a model kept to some groups."""
    catalogue = cache.get(CATALOGUE_CACHE_KEY)
    if catalogue is None:
        catalogue = {model.model_id: model for model in ChatModel.objects.all()}
        allowed: dict[int, set[int]] = {}
        for model_pk, group_pk in ChatModel.groups.through.objects.values_list("chatmodel_id", "group_id"):
            allowed.setdefault(model_pk, set()).add(group_pk)
        for model in catalogue.values():
            model.access_group_ids = frozenset(allowed.get(model.pk, ()))
        cache.set(CATALOGUE_CACHE_KEY, catalogue, CATALOGUE_SECONDS)
    return catalogue


def _may_use(user, chat_model: ChatModel | None, group_ids: frozenset[int] | None = None) -> bool:
    if chat_model is None or not chat_model.groups_only or user.is_superuser:
        return True
    if not chat_model.access_group_ids:
        return False
    if group_ids is not None:
        return bool(group_ids & chat_model.access_group_ids)
    return user.groups.filter(pk__in=chat_model.access_group_ids).exists()


def may_use(user, model_id: str) -> bool:
    """Whether `user` may send to the model: every model, unless the catalogue keeps it to some
    groups (superusers may use every one). A model the catalogue does not list is everyone's."""
    return _may_use(user, chat_catalogue().get(model_id))


def enabled_chat_models(user=None) -> list[ChatModel]:
    """The models a person may choose, as the chat page offers them; with `user`, only theirs."""
    models = sorted(
        (model for model in chat_catalogue().values() if model.enabled), key=lambda m: (m.display_name, m.model_id)
    )
    if user is None:
        return models
    group_ids = None
    if any(model.groups_only for model in models) and not user.is_superuser:
        group_ids = frozenset(user.groups.values_list("pk", flat=True))  # one query for the whole list
    return [model for model in models if _may_use(user, model, group_ids)]


def default_model_id(user=None) -> str:
    """The model of a new chat: AIMLAPI_MODEL unless the catalogue turned it off (or keeps it from
    `user`), else the first enabled one (that `user` may use)."""
    configured = chat_catalogue().get(settings.AIMLAPI_MODEL)
    if configured is None or (configured.enabled and (user is None or _may_use(user, configured))):
        return settings.AIMLAPI_MODEL
    enabled = enabled_chat_models(user)
    return enabled[0].model_id if enabled else ""


def model_default_params(model_id: str) -> dict:
    """The catalogue's default generation parameters for a model (empty when it has none)."""
    chat_model = chat_catalogue().get(model_id)
    return dict(chat_model.default_params) if chat_model and isinstance(chat_model.default_params, dict) else {}


def model_is_turned_off(model_id: str) -> bool:
    """True when the catalogue lists the model as disabled (models it does not list are not refused)."""
    chat_model = chat_catalogue().get(model_id)
    return chat_model is not None and not chat_model.enabled


def offered_model(model_id: str, user=None) -> str:
    """The model a conversation set to `model_id` is sent with: that model when the catalogue lists
    it (one turned off, or kept from its owner, is refused before sending) or it is AIMLAPI_MODEL,
    else the site's default (for `user`: one they may use).

    So a name from an imported file, or a catalogue entry since deleted, never reaches the upstream.
    """
    if model_id and (model_id in chat_catalogue() or model_id == settings.AIMLAPI_MODEL):
        return model_id
    return default_model_id(user)
