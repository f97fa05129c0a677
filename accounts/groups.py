"""The provider's group claim mirrored into Django groups at every sign-in through it."""

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.models import GroupMapping


def claim_values(claims: dict, claim: str) -> set[str]:
    """The group names in a claim that may be a list of names, one name, or absent."""
    value = claims.get(claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return set()
    return {str(item).strip()[:150] for item in value if isinstance(item, str | int) and str(item).strip()}


def _mapping_for(value: str) -> GroupMapping:
    mapping = GroupMapping.objects.select_related("group").filter(claim_value=value).first()
    if mapping:
        return mapping
    # A value nobody mapped fills the group of that name, which becomes the provider's.
    group, _ = Group.objects.get_or_create(name=value)
    try:
        with transaction.atomic():
            return GroupMapping.objects.create(claim_value=value, group=group)
    except IntegrityError:  # another sign-in mapped it first
        return GroupMapping.objects.select_related("group").get(claim_value=value)


def groups_mirror(*, user, values: Iterable[str]) -> None:
    """Put the user in exactly the provider's groups that `values` map to; other groups stay as they are."""
    with transaction.atomic():
        wanted = {_mapping_for(value).group_id for value in set(values)}
        providers = set(GroupMapping.objects.values_list("group_id", flat=True))
        current = set(user.groups.values_list("pk", flat=True))
        if stale := (current & providers) - wanted:
            user.groups.remove(*stale)
        if missing := wanted - current:
            user.groups.add(*missing)
