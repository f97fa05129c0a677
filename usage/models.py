"""What the upstream calls cost: one row per call, each person's token quota and money budget,
each group's budget, and the running totals per day that the checks before a call read."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

# Money is kept to the nano-unit of the site's currency (a hundredth of a micro-cent): a row's
# cost is rounded to it once, and the day totals add whole nano-units, so they stay exact.
COST_PLACES = 9
NANOS = 10**COST_PLACES


def _budget_field(period: str) -> models.DecimalField:
    return models.DecimalField(
        f"{period} budget",
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=f"Money per {period}, in the site currency (CHAT_CURRENCY). Blank: the site default. 0: no limit.",
    )


class UserQuota(models.Model):
    """A person's own token quota; blank fields fall back to the site's default (settings)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_quota")
    daily_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens per day. Blank: the site default. 0: unlimited."
    )
    monthly_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tokens per calendar month. Blank: the site default. 0: unlimited."
    )
    daily_budget = _budget_field("day")
    monthly_budget = _budget_field("month")

    class Meta:
        db_table = "conversations_userquota"  # made by the conversations app, before usage had its own
        verbose_name = "token quota"

    def __str__(self) -> str:
        return f"Quota of {self.user}"


class Usage(models.Model):
    """One upstream call: who made it, with which key and model, what it cost and how it ended."""

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="usage")
    # Null: the key from the environment (AIMLAPI_API_KEY), or a stored key since deleted.
    key = models.ForeignKey(
        "providers.ProviderKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    key_label = models.CharField(max_length=100, blank=True, help_text="The key's label when the call was made.")
    model = models.CharField(max_length=200)
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the last byte.")
    first_token_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the request to the first text.")
    # The upstream sent no token counts (a stopped reply, or a server that sends none in
    # streams): the counts are conversations.tokens' estimate from the text.
    tokens_estimated = models.BooleanField("estimated", default=False)
    # The model's prices per million tokens when the call was made (blank: it had none), and what
    # the call cost at them; a later price edit leaves both as they were.
    input_price = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output_price = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=COST_PLACES, default=0)

    class Source(models.TextChoices):
        CHAT = "chat", "Chat page"
        API = "api", "API"

    status = models.CharField(max_length=16, choices=Status.choices)
    # Where the call came from: the chat page, or a person's own tool through /v1/ (api/).
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CHAT)
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "conversations_usage"  # made by the conversations app, before usage had its own
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "usage"
        indexes = [
            # total_tokens too, so the quota check reads the index alone (see bench/README.md).
            models.Index(fields=["user", "created_at", "total_tokens"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model} · {self.total_tokens} tokens · {self.status}"


class GroupBudget(models.Model):
    """What the members of a group may spend together, per month and per day."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="chat_budget")
    daily_budget = models.DecimalField(
        "daily budget",
        max_digits=12,
        decimal_places=4,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="Money per day for the whole group, in the site currency. 0: no limit.",
    )
    monthly_budget = models.DecimalField(
        "monthly budget",
        max_digits=12,
        decimal_places=4,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="Money per calendar month for the whole group, in the site currency. 0: no limit.",
    )

    class Meta:
        verbose_name = "group budget"

    def __str__(self) -> str:
        return f"Budget of {self.group}"


class Rollup(models.Model):
    """The running totals of one day (in TIME_ZONE) for one person, one group or the whole site.

    Written by usage.rollups in the transaction of each usage row, with an atomic upsert; rebuilt
    from the rows by `manage.py rebuild_usage_rollups`. A group's totals count its members' calls
    as they were members when the call was made.
    """

    class Scope(models.TextChoices):
        USER = "user", "Person"
        GROUP = "group", "Group"
        SITE = "site", "Site"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    owner_id = models.BigIntegerField(default=0, help_text="The user's or group's id; 0 for the site.")
    day = models.DateField()
    calls = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0, help_text=f"The cost in units of 1e-{COST_PLACES}.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "owner_id", "day"], name="usage_rollup_one_per_day")]

    def __str__(self) -> str:
        return f"{self.scope} {self.owner_id} on {self.day}: {self.tokens} tokens"
