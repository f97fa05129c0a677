"""The model catalogue as the chat reads it: which models are offered, and with what defaults."""

from django.conf import settings
from django.core.cache import cache

from providers.models import CATALOGUE_CACHE_KEY, ChatModel

CATALOGUE_SECONDS = 30


def chat_catalogue() -> dict[str, ChatModel]:
    """Every model of the catalogue by upstream id, kept in the cache: each chat page and each
    reply reads it, and it changes only when an admin edits it (ChatModel.save clears it; other
    processes without a shared cache see the change within CATALOGUE_SECONDS)."""
    catalogue = cache.get(CATALOGUE_CACHE_KEY)
    if catalogue is None:
        catalogue = {model.model_id: model for model in ChatModel.objects.all()}
        cache.set(CATALOGUE_CACHE_KEY, catalogue, CATALOGUE_SECONDS)
    return catalogue


def enabled_chat_models() -> list[ChatModel]:
    """The models a person may choose, as the chat page offers them."""
    return sorted(
        (model for model in chat_catalogue().values() if model.enabled), key=lambda m: (m.display_name, m.model_id)
    )


def default_model_id() -> str:
    """The model of a new chat: AIMLAPI_MODEL unless the catalogue turned it off, else the first enabled one."""
    configured = chat_catalogue().get(settings.AIMLAPI_MODEL)
    if configured is None or configured.enabled:
        return settings.AIMLAPI_MODEL
    enabled = enabled_chat_models()
    return enabled[0].model_id if enabled else ""


def model_default_params(model_id: str) -> dict:
    """The catalogue's default generation parameters for a model (empty when it has none)."""
    chat_model = chat_catalogue().get(model_id)
    return dict(chat_model.default_params) if chat_model and isinstance(chat_model.default_params, dict) else {}


def model_is_turned_off(model_id: str) -> bool:
    """True when the catalogue lists the model as disabled (models it does not list are not refused)."""
    chat_model = chat_catalogue().get(model_id)
    return chat_model is not None and not chat_model.enabled


def offered_model(model_id: str) -> str:
    """The model a conversation set to `model_id` is sent with: that model when the catalogue lists
    it (one turned off is refused before sending) or it is AIMLAPI_MODEL, else the site's default.

    So a name from an imported file, or a catalogue entry since deleted, never reaches the upstream.
    """
    if model_id and (model_id in chat_catalogue() or model_id == settings.AIMLAPI_MODEL):
        return model_id
    return default_model_id()
