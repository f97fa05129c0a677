"""Which key a person uses, read from the cached assignments: each level's precedence, and every
change an admin can make to a key, its people or its groups seen by the next lookup."""

import pytest
from django.contrib.auth.models import Group

from providers import keys
from providers.models import ProviderKey

pytestmark = pytest.mark.django_db


def _key(label, **fields) -> ProviderKey:
    key = ProviderKey(label=label, **fields)
    keys.set_secret(key, f"sk-{label.lower()}-secret-0000000000")
    key.save()
    return key


@pytest.fixture
def team(alice):
    group = Group.objects.create(name="team")
    alice.groups.add(group)
    return group


def test_it_asks_the_database_nothing_when_no_stored_key_applies(alice, django_assert_num_queries):
    keys.stored_key_for(alice)  # fills the cache

    with django_assert_num_queries(0):
        assert keys.resolve_key(alice).provider_key is None


def test_it_reads_only_the_chosen_row_once_the_assignments_are_cached(alice, django_assert_num_queries):
    default = _key("Default", is_default=True)
    keys.stored_key_for(alice)

    with django_assert_num_queries(1):
        assert keys.stored_key_for(alice) == default


def test_at_each_level_the_oldest_key_wins(alice, team):
    defaults = [_key("Default 1", is_default=True), _key("Default 2", is_default=True)]
    assert keys.stored_key_for(alice) == defaults[0]

    group_keys = [_key("Group 1"), _key("Group 2")]
    for key in reversed(group_keys):
        key.groups.add(team)
    assert keys.stored_key_for(alice) == group_keys[0]

    own = [_key("Own 1"), _key("Own 2")]
    for key in reversed(own):
        key.users.add(alice)
    assert keys.stored_key_for(alice) == own[0]


def test_a_key_of_another_person_or_group_is_not_mine(alice, bob, team):
    other_group = Group.objects.create(name="others")
    _key("Bob").users.add(bob)
    _key("Others").groups.add(other_group)
    default = _key("Default", is_default=True)

    assert keys.stored_key_for(alice) == default
    assert keys.stored_key_for(bob) != default


def test_a_key_given_to_me_and_my_group_is_counted_once(alice, team):
    both = _key("Both")
    both.users.add(alice)
    both.groups.add(team)

    assert keys.stored_key_for(alice) == both


def test_it_sees_a_key_disabled_enabled_or_deleted(alice):
    default = _key("Default", is_default=True)
    assert keys.stored_key_for(alice) == default

    default.enabled = False
    default.save()
    assert keys.stored_key_for(alice) is None

    default.enabled = True
    default.save()
    assert keys.stored_key_for(alice) == default

    default.delete()
    assert keys.stored_key_for(alice) is None


def test_it_sees_a_key_made_the_site_default_or_no_longer_one(alice):
    key = _key("Key")
    assert keys.stored_key_for(alice) is None

    key.is_default = True
    key.save()
    assert keys.stored_key_for(alice) == key

    key.is_default = False
    key.save()
    assert keys.stored_key_for(alice) is None


def test_it_sees_a_key_given_to_a_person_and_taken_back(alice):
    key = _key("Alice")
    assert keys.stored_key_for(alice) is None

    key.users.add(alice)
    assert keys.stored_key_for(alice) == key

    alice.provider_keys.remove(key)  # from the other side of the relation
    assert keys.stored_key_for(alice) is None

    key.users.set([alice])
    key.users.clear()
    assert keys.stored_key_for(alice) is None


def test_it_sees_a_key_given_to_a_group_and_taken_back(alice, team):
    key = _key("Team")
    assert keys.stored_key_for(alice) is None

    team.provider_keys.add(key)
    assert keys.stored_key_for(alice) == key

    key.groups.remove(team)
    assert keys.stored_key_for(alice) is None


def test_it_sees_a_person_join_or_leave_a_group_with_a_key(alice, bob, team):
    key = _key("Team")
    key.groups.add(team)
    assert keys.stored_key_for(bob) is None

    bob.groups.add(team)
    assert keys.stored_key_for(bob) == key

    team.user_set.remove(bob)
    assert keys.stored_key_for(bob) is None


def test_it_sees_a_group_deleted(alice, team):
    key = _key("Team")
    key.groups.add(team)
    default = _key("Default", is_default=True)
    assert keys.stored_key_for(alice) == key

    team.delete()
    assert keys.stored_key_for(alice) == default


def test_a_key_disabled_where_the_cache_cannot_hear_it_is_never_used(alice):
    # Another process without a shared cache: its signals clear its own cache, not this one's.
    own = _key("Alice")
    own.users.add(alice)
    default = _key("Default", is_default=True)
    assert keys.stored_key_for(alice) == own

    ProviderKey.objects.filter(pk=own.pk).update(enabled=False)  # no signal

    assert keys.stored_key_for(alice) == default
