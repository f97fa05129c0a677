"""Which retention periods are in force: the admin's policy row, else the environment's defaults."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser

from retention.models import GroupRetention, RetentionPolicy


@dataclass(frozen=True)
class Periods:
    """Days each kind of data is kept; 0 keeps it forever."""

    conversation_days: int
    trash_days: int
    usage_content_days: int


_SETTINGS = {
    "conversation_days": "RETENTION_CONVERSATION_DAYS",
    "trash_days": "RETENTION_TRASH_DAYS",
    "usage_content_days": "RETENTION_USAGE_CONTENT_DAYS",
}


def site_periods() -> Periods:
    """The site's periods: each field of the admin's policy that is set, else its environment variable."""
    policy = RetentionPolicy.objects.first()
    values = {}
    for field, setting in _SETTINGS.items():
        chosen = getattr(policy, field) if policy else None
        values[field] = getattr(settings, setting) if chosen is None else chosen
    return Periods(**values)


def conversation_days_for(user: AbstractBaseUser) -> int:
    """Days this person's conversations are kept after their last update (0: forever).

    A person in groups with a period of their own gets the longest of those (0 beats every
    number): a deletion cannot be undone, so where two groups disagree the data stays.
    Everyone else gets the site's period.
    """
    days = list(GroupRetention.objects.filter(group__user=user).values_list("conversation_days", flat=True))
    if not days:
        return site_periods().conversation_days
    return 0 if 0 in days else max(days)
