"""Who may see, use, change and share a prompt: the rules in one place, for pages, picker and admin checks.

- Use and read: its owner; the members of its group (a group prompt); everyone signed in (a site prompt).
  Another person's personal prompt is not found (404), for admins too (they have the admin site).
- Change and delete: its owner; for a group or site prompt also whoever holds the model's change
  (or delete) permission: the admins.
- Share with a group: only a group the sharer is a member of (or the group it already has).
- Share with the whole site: a superuser, or whoever holds `prompts.share_site_wide` (given in the
  admin to a person or a group). Being staff alone is not enough.
"""

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db.models import Q, QuerySet

from prompts.models import Prompt


def usable(user: AbstractBaseUser) -> QuerySet[Prompt]:
    """The prompts the person may read and use: their own, their groups', the site's."""
    return Prompt.objects.filter(
        Q(owner=user)
        | Q(audience=Prompt.Audience.SITE)
        | Q(audience=Prompt.Audience.GROUP, group__in=user.groups.all())
    ).select_related("group", "owner")


def writable(user: AbstractBaseUser, *, action: str = "change") -> QuerySet[Prompt]:
    """The prompts the person may change (action "change") or delete ("delete")."""
    mine = Q(owner=user)
    if user.has_perm(f"prompts.{action}_prompt"):
        return Prompt.objects.filter(mine | ~Q(audience=Prompt.Audience.PERSONAL)).select_related("group")
    return Prompt.objects.filter(mine).select_related("group")


def may_share_site_wide(user: AbstractBaseUser) -> bool:
    return user.has_perm("prompts.share_site_wide")


def shareable_groups(user: AbstractBaseUser, *, keeping: Group | None = None) -> QuerySet[Group]:
    """The groups the person may share with: their own, and the one a prompt already has."""
    groups = Q(pk__in=user.groups.values("pk"))
    if keeping is not None:
        groups |= Q(pk=keeping.pk)
    return Group.objects.filter(groups).order_by("name")
