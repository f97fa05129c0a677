"""What chatsite knows of its upstreams: the model catalogue admins keep, and the API keys."""

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone

from providers.params import PARAMETER_BOUNDS, validate_params

DEFAULT_BASE_URL = "https://api.aimlapi.com/v1"


# The catalogue is read from the cache by providers.catalogue (v2: its entries carry their groups).
CATALOGUE_CACHE_KEY = "chatsite:chat-model-catalogue:v2"


def _forget_catalogue() -> None:
    cache.delete(CATALOGUE_CACHE_KEY)


class ChatModel(models.Model):
    """A model the chat page offers: the catalogue admins keep."""

    model_id = models.CharField("upstream model id", max_length=200, unique=True)
    display_name = models.CharField(max_length=100)
    context_window = models.PositiveIntegerField(default=32000, help_text="Tokens: the prompt plus the reply.")
    default_params = models.JSONField(
        "default parameters",
        default=dict,
        blank=True,
        help_text='Sent when a chat leaves them blank, e.g. {"temperature": 0.7}. Allowed: '
        + ", ".join(PARAMETER_BOUNDS)
        + ".",
    )
    enabled = models.BooleanField(default=True, help_text="Offered for new messages.")
    # Who may use it: everyone, unless groups_only; then the members of `groups` (and superusers).
    # A flag rather than "no groups means everyone": deleting a model's last group must not open it.
    groups_only = models.BooleanField(
        "only for some groups",
        default=False,
        help_text="Offered only to the members of the groups below (and to superusers). Off: everyone.",
    )
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="chat_models")
    # In the site's currency (CHAT_CURRENCY). Blank: no price, so its calls cost 0. Copied onto
    # each usage row when the call is made (usage.services.record): an edit rewrites no history.
    input_price = models.DecimalField(
        "price per million input tokens",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="In the site currency. Blank: no price (its calls cost 0).",
    )
    output_price = models.DecimalField(
        "price per million output tokens",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="In the site currency. Blank: no price (its calls cost 0).",
    )

    class Meta:
        db_table = "conversations_chatmodel"  # made by the conversations app, before providers had its own
        ordering = ["display_name", "model_id"]

    def __str__(self) -> str:
        return self.display_name or self.model_id

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        _forget_catalogue()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        _forget_catalogue()
        return result

    def clean(self) -> None:
        if not isinstance(self.default_params, dict):
            raise ValidationError({"default_params": 'Give a JSON object, e.g. {} or {"temperature": 0.7}.'})
        try:
            validate_params(self.default_params)
        except ValueError as error:
            raise ValidationError({"default_params": str(error)}) from None
        max_tokens = self.default_params.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > self.context_window:
            raise ValidationError({"default_params": "max_tokens cannot exceed the context window."})


HTTP_URL = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// address.", code="http_only")


class ProviderKey(models.Model):
    """An upstream API key, stored encrypted (providers.keys) and never shown again."""

    label = models.CharField(max_length=100, unique=True)
    # Only http(s): the server itself calls this address, so no file:, ftp: or other scheme.
    base_url = models.URLField("base URL", max_length=300, default=DEFAULT_BASE_URL, validators=[HTTP_URL])
    # A Fernet token; see providers.keys. The plain key is never stored.
    secret_encrypted = models.TextField(editable=False)
    last4 = models.CharField(max_length=4, editable=False, help_text="The last 4 characters, to tell keys apart.")
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(
        "site default", default=False, help_text="Used by everyone without a key of their own or of their group."
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="provider_keys")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="provider_keys")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "conversations_providerkey"  # made by the conversations app, before providers had its own
        ordering = ["label"]
        verbose_name = "upstream API key"

    def __str__(self) -> str:
        return self.label

    @property
    def masked(self) -> str:
        return f"••••{self.last4}"
